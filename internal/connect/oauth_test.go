package connect

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
)

// tokenServer is a client-credentials token endpoint that hands out
// tok-1, tok-2 … valid for lifetime, to client id "orderstream" with
// secret "oauth-s3cret" only.
func tokenServer(t *testing.T, lifetime time.Duration) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, secret, ok := r.BasicAuth()
		if !ok {
			_ = r.ParseForm()
			id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
		}
		if id != "orderstream" || secret != "oauth-s3cret" || r.FormValue("grant_type") != "client_credentials" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":"invalid_client"}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":"tok-%d","token_type":"Bearer","expires_in":%d}`, n.Add(1), int(lifetime.Seconds()))
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func TestTokenCacheRefreshesBeforeExpiry(t *testing.T) {
	t.Parallel()
	srv, fetches := tokenServer(t, 300*time.Second)
	tc := NewTokenCache(ClientCredentials{TokenURL: srv.URL, ClientID: "orderstream", ClientSecret: NewSecret("oauth-s3cret")})
	now := time.Now()
	tc.now = func() time.Time { return now }
	ctx := context.Background()
	steps := []struct {
		after       time.Duration // since the first fetch
		wantToken   string
		wantFetches int32
	}{
		{0, "tok-1", 1},
		{100 * time.Second, "tok-1", 1},   // cached
		{239 * time.Second, "tok-1", 1},   // still more than 1 min left
		{241 * time.Second, "tok-2", 2},   // less than 1 min left: fetched again before it expires
		{241*time.Second + 1, "tok-2", 2}, // the new one is cached
	}
	start := now
	for _, s := range steps {
		now = start.Add(s.after)
		got, err := tc.Token(ctx)
		if err != nil {
			t.Fatalf("at +%s: %v", s.after, err)
		}
		if got != s.wantToken || fetches.Load() != s.wantFetches {
			t.Errorf("at +%s: token %q after %d fetches, want %q after %d", s.after, got, fetches.Load(), s.wantToken, s.wantFetches)
		}
	}
}

func TestTokenCacheShortLivedToken(t *testing.T) {
	t.Parallel()
	srv, fetches := tokenServer(t, 60*time.Second)
	tc := NewTokenCache(ClientCredentials{TokenURL: srv.URL, ClientID: "orderstream", ClientSecret: NewSecret("oauth-s3cret")})
	now := time.Now()
	tc.now = func() time.Time { return now }
	if _, err := tc.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	now = now.Add(47 * time.Second) // a fifth of 60 s is 12 s: refresh from 48 s on
	_, _ = tc.Token(context.Background())
	now = now.Add(2 * time.Second)
	got, _ := tc.Token(context.Background())
	if got != "tok-2" || fetches.Load() != 2 {
		t.Errorf("at +49s of a 60 s token: %q after %d fetches, want tok-2 after 2", got, fetches.Load())
	}
}

func TestTokenCacheErrorNamesEndpointNotSecret(t *testing.T) {
	t.Parallel()
	srv, _ := tokenServer(t, time.Minute)
	tc := NewTokenCache(ClientCredentials{TokenURL: srv.URL, ClientID: "orderstream", ClientSecret: NewSecret("wrong-s3cret")})
	_, err := tc.Token(context.Background())
	if err == nil {
		t.Fatal("a wrong client secret got a token")
	}
	for _, want := range []string{srv.URL, "--kafka-oauth-token-url", `client id "orderstream"`, "invalid_client"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "wrong-s3cret") {
		t.Errorf("error shows the secret: %v", err)
	}
}

// saslOf returns the SASL mechanisms the options configure.
func saslOf(t *testing.T, opts []kgo.Opt) []sasl.Mechanism {
	t.Helper()
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []sasl.Mechanism
	for _, v := range cl.OptValues(kgo.SASL) {
		if ms, ok := v.([]sasl.Mechanism); ok {
			out = append(out, ms...)
		}
	}
	return out
}

func TestKafkaSASLMechanisms(t *testing.T) {
	t.Parallel()
	srv, _ := tokenServer(t, time.Hour)
	secretFile := writeFile(t, "secret", "oauth-s3cret\n")
	base := Kafka{Brokers: []string{"127.0.0.1:1"}, SASLUser: "u", SASLPassword: NewSecret("p")}
	for _, tt := range []struct {
		give      string
		wantName  string
		wantFirst string // in the client's first message
	}{
		{"none", "", ""},
		{"plain", "PLAIN", "\x00u\x00p"},
		{"SCRAM-SHA-256", "SCRAM-SHA-256", "n,,n=u,r="},
		{"SCRAM-SHA-512", "SCRAM-SHA-512", "n,,n=u,r="},
		{"OAUTHBEARER", "OAUTHBEARER", "auth=Bearer tok-1"},
	} {
		k := base
		k.SASLMechanism = tt.give
		if tt.give == "OAUTHBEARER" {
			k.OAuthTokenURL, k.OAuthClientID, k.OAuthClientSecretFile = srv.URL, "orderstream", secretFile
		}
		opts, err := k.ClientOpts(nil)
		if err != nil {
			t.Fatalf("%s: %v", tt.give, err)
		}
		ms := saslOf(t, opts)
		if tt.wantName == "" {
			if len(ms) != 0 {
				t.Errorf("%s: %d SASL mechanisms configured, want none", tt.give, len(ms))
			}
			continue
		}
		if len(ms) != 1 || ms[0].Name() != tt.wantName {
			t.Fatalf("%s: mechanisms %v, want one %s", tt.give, ms, tt.wantName)
		}
		_, first, err := ms[0].Authenticate(context.Background(), "127.0.0.1:1")
		if err != nil {
			t.Fatalf("%s: first message: %v", tt.give, err)
		}
		if !strings.Contains(string(first), tt.wantFirst) {
			t.Errorf("%s: first message %q does not hold %q", tt.give, first, tt.wantFirst)
		}
	}
}
