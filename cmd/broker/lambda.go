package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// skillLambda is the sandbox's smart-home skill endpoint, doing what the
// README's Node.js Lambda does: an Alexa.Authorization AcceptGrant directive
// is POSTed as received, byte for byte, to brokerURL +
// /v1/smart-home/accept-grant?skill_id=skillID, and the broker's JSON body is
// returned to Alexa unchanged, whatever the HTTP status (AcceptGrant.Response
// or ErrorResponse). It returns an error when the directive is not JSON, is
// another directive (the sandbox's skill handles none other), the broker
// cannot be reached, or its body is not JSON.
func skillLambda(ctx context.Context, client *http.Client, brokerURL, skillID string, directive []byte) (json.RawMessage, error) {
	var in struct {
		Directive struct {
			Header struct {
				Namespace string `json:"namespace"`
				Name      string `json:"name"`
			} `json:"header"`
		} `json:"directive"`
	}
	if err := json.Unmarshal(directive, &in); err != nil {
		return nil, fmt.Errorf("skill Lambda: the directive is not JSON: %w", err)
	}
	if h := in.Directive.Header; h.Namespace != "Alexa.Authorization" || h.Name != "AcceptGrant" {
		return nil, fmt.Errorf("skill Lambda: the sandbox's skill handles AcceptGrant only, not %s.%s", h.Namespace, h.Name)
	}
	target := brokerURL + "/v1/smart-home/accept-grant?skill_id=" + url.QueryEscape(skillID)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(directive))
	if err != nil {
		return nil, fmt.Errorf("skill Lambda: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("skill Lambda: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("skill Lambda: reading the broker's answer: %w", err)
	}
	if !json.Valid(body) {
		return nil, fmt.Errorf("skill Lambda: the broker answered %d without JSON", resp.StatusCode)
	}
	return json.RawMessage(body), nil
}
