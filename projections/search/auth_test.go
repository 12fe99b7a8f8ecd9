package search

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/orderstream/orderstream/internal/connect"
)

// TestEnginesSendCredentials: both adapters send basic auth or the API key
// on every request, and the cloud id selects Elasticsearch only.
func TestEnginesSendCredentials(t *testing.T) {
	t.Parallel()
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("orderstream:s3cret"))
	for _, kind := range []string{EngineOpenSearch, EngineElasticsearch} {
		for _, tt := range []struct {
			name string
			cfg  EngineConfig
			want string
		}{
			{"basic auth", EngineConfig{Username: "orderstream", Password: "s3cret"}, basic},
			{"API key", EngineConfig{APIKey: "a2V5OnNlY3JldA=="}, "ApiKey a2V5OnNlY3JldA=="},
			{"none", EngineConfig{}, ""},
		} {
			rec := &recordingTransport{}
			cfg := tt.cfg
			cfg.Kind, cfg.URL, cfg.Transport = kind, "https://127.0.0.1:9", rec
			eng, err := NewEngine(cfg)
			if err != nil {
				t.Fatalf("%s/%s: %v", kind, tt.name, err)
			}
			if _, err := eng.Get(context.Background(), "orders", "x"); err != nil {
				t.Fatalf("%s/%s: %v", kind, tt.name, err)
			}
			// The scheme is case-insensitive (RFC 9110 §11.1): go-elasticsearch
			// sends "APIKey", the OpenSearch adapter "ApiKey".
			got := rec.last.Header.Get("Authorization")
			gotScheme, gotCred, _ := strings.Cut(got, " ")
			wantScheme, wantCred, _ := strings.Cut(tt.want, " ")
			if !strings.EqualFold(gotScheme, wantScheme) || gotCred != wantCred {
				t.Errorf("%s/%s: Authorization %q, want %q", kind, tt.name, got, tt.want)
			}
		}
	}
	if _, err := NewEngine(EngineConfig{Kind: EngineOpenSearch, CloudID: "dep:abc"}); err == nil || !strings.Contains(err.Error(), "Elasticsearch only") {
		t.Errorf("a cloud id for OpenSearch: %v, want an error", err)
	}
	if _, err := NewEngine(EngineConfig{Kind: EngineElasticsearch, APIKey: "k", Username: "u"}); err == nil {
		t.Error("API key and basic auth together: no error")
	}
	if _, err := NewEngine(EngineConfig{Kind: EngineOpenSearch, URL: "htp://u:s3cret@h"}); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("bad URL with a password: %v, want an error without the password", err)
	}
}

// statusTransport answers every request with one status and body, as a
// proxy in front of the engine (nginx) does.
type statusTransport struct {
	status int
	body   string
}

func (t statusTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: t.status, Header: http.Header{"Content-Type": []string{"text/html"}}, Request: r,
		Body: io.NopCloser(strings.NewReader(t.body))}, nil
}

// TestRefusalsNameTheSetting: both adapters report a refused login and a
// TLS port's answer to plain HTTP as an *EngineError that connect.Explain
// completes with the engine's URL and the setting to fix; an engine's own
// 400 is left alone.
func TestRefusalsNameTheSetting(t *testing.T) {
	t.Parallel()
	const nginx400 = "<html><head><title>400 The plain HTTP request was sent to HTTPS port</title></head></html>"
	for _, kind := range []string{EngineOpenSearch, EngineElasticsearch} {
		for _, tt := range []struct {
			name string
			url  string
			tr   statusTransport
			want []string // nil: Explain leaves the error alone
		}{
			{"wrong password", "https://127.0.0.1:59143", statusTransport{401, "<html>401 Authorization Required</html>"},
				[]string{"search at https://127.0.0.1:59143", "--search-user", "--search-password"}},
			{"http to the https port", "http://127.0.0.1:59143", statusTransport{400, nginx400},
				[]string{"search at http://127.0.0.1:59143", "https://127.0.0.1:59143 in --search-url"}},
			{"engine's own 400", "http://127.0.0.1:59200", statusTransport{400, `{"error":{"type":"parsing_exception","reason":"unknown query"},"status":400}`}, nil},
		} {
			eng, err := NewEngine(EngineConfig{Kind: kind, URL: tt.url, Username: "orderstream", Password: "not-it", Transport: tt.tr})
			if err != nil {
				t.Fatal(err)
			}
			r, err := eng.Search(context.Background(), "orders", []byte(`{}`))
			if err != nil {
				t.Fatalf("%s/%s: %v", kind, tt.name, err)
			}
			err = check("search orders", r)
			var ee *EngineError
			if !errors.As(err, &ee) || ee.HTTPStatus() != tt.tr.status || ee.BaseURL() != tt.url {
				t.Fatalf("%s/%s: %#v, want an *EngineError of HTTP %d from %s", kind, tt.name, err, tt.tr.status, tt.url)
			}
			got := connect.Explain(err)
			if tt.want == nil {
				if got != err {
					t.Errorf("%s/%s: Explain changed %v into %v", kind, tt.name, err, got)
				}
				continue
			}
			for _, w := range tt.want {
				if !strings.Contains(got.Error(), w) {
					t.Errorf("%s/%s: %q does not say %q", kind, tt.name, got, w)
				}
			}
		}
	}
}
