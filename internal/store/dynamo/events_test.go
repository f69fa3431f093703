package dynamo_test

import (
	"testing"

	"github.com/reciprocal-broker/broker/internal/store/dynamo/dynamotest"
	"github.com/reciprocal-broker/broker/internal/store/storetest"
)

func TestStore_Events(t *testing.T) {
	endpoint := dynamotest.Start(t)
	storetest.RunEvents(t, func(t *testing.T) storetest.EventStore { return openNew(t, endpoint) })
}

func TestStore_ReportEvents(t *testing.T) {
	endpoint := dynamotest.Start(t)
	storetest.RunReportEvents(t, func(t *testing.T) storetest.ReportEventStore { return openNew(t, endpoint) })
}

func TestStore_Webhooks(t *testing.T) {
	endpoint := dynamotest.Start(t)
	storetest.RunWebhooks(t, func(t *testing.T) storetest.WebhookStore { return openNew(t, endpoint) })
}

func TestStore_Counts(t *testing.T) {
	endpoint := dynamotest.Start(t)
	t.Run("Links", func(t *testing.T) {
		storetest.RunLinkCounts(t, func(t *testing.T) storetest.LinkCountStore { return openNew(t, endpoint) })
	})
	t.Run("Reports", func(t *testing.T) {
		storetest.RunReportCounts(t, func(t *testing.T) storetest.ReportCountStore { return openNew(t, endpoint) })
	})
}
