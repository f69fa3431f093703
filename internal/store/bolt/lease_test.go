package bolt_test

import (
	"testing"

	"github.com/reciprocal-broker/broker/internal/store/storetest"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

func TestStore_Leases(t *testing.T) {
	storetest.RunLeases(t, func(t *testing.T) tokens.Leaser {
		return openTemp(t)
	})
}
