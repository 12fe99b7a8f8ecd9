package search

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/orderstream/orderstream/schemas"
)

// channelEvents: a sale placed on the web then paid, a v2 sale without a
// channel, and a sale written as v1 (no channel) and upcast as a consumer
// reads it.
func channelEvents(t *testing.T) []schemas.Envelope {
	t.Helper()
	web := placedSale("900001", schemas.KindSale)
	web.Channel = schemas.ChannelWeb
	u := schemas.NewUpcasters()
	v1, err := u.Downcast(ev(t, "ch-v1", 1, placedSale("900003", schemas.KindSale)), 1)
	if err != nil || v1.SchemaVersion != 1 {
		t.Fatalf("downcast to v1: version %d, %v", v1.SchemaVersion, err)
	}
	if v1, err = u.Upcast(v1); err != nil {
		t.Fatal(err)
	}
	return []schemas.Envelope{
		ev(t, "ch-web", 1, web),
		ev(t, "ch-none", 1, placedSale("900002", schemas.KindSale)),
		v1,
		ev(t, "ch-web", 2, &schemas.OrderPaid{Amount: gbp("35.642")}),
	}
}

// TestChannel: the channel is indexed as a keyword, kept when a later event
// updates the document, filtered on (web; unknown = no channel, v1 events
// included) and counted in the channel facet, the same after a replay; an
// unknown channel is refused by name.
func TestChannel(t *testing.T) {
	for name, eng := range testEngines(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			admin, sink, q := newTestSinkQuery(t, eng)
			events := channelEvents(t)
			check := func(stage string) {
				t.Helper()
				if err := admin.Refresh(ctx); err != nil {
					t.Fatal(err)
				}
				for ch, want := range map[string]string{"web": "ch-web:web:paid", "unknown": "ch-none::placed ch-v1::placed", "phone": "", "": "ch-none::placed ch-v1::placed ch-web:web:paid"} {
					res, err := q.Search(ctx, Request{Channel: ch, Sort: SortTotal})
					if err != nil {
						t.Fatalf("%s: search channel %q: %v", stage, ch, err)
					}
					got := map[string]string{}
					for _, o := range res.Hits {
						got[o.OrderID] = fmt.Sprintf("%s:%s:%s", o.OrderID, o.Channel, o.Status)
					}
					var s string
					for _, id := range []string{"ch-none", "ch-v1", "ch-web"} {
						if v, ok := got[id]; ok {
							if s != "" {
								s += " "
							}
							s += v
						}
					}
					if s != want || res.Total != int64(len(got)) {
						t.Errorf("%s: search channel %q = %q (total %d), want %q", stage, ch, s, res.Total, want)
					}
					if ch == "" {
						if f, _ := json.Marshal(res.Facets.Channel); string(f) != `[{"key":"unknown","count":2},{"key":"web","count":1}]` {
							t.Errorf("%s: channel facet = %s", stage, f)
						}
					}
				}
			}
			if err := sink.Write(ctx, recs(events...)); err != nil {
				t.Fatal(err)
			}
			check("after one delivery")
			if err := sink.Write(ctx, recs(events...)); err != nil {
				t.Fatal(err)
			}
			check("after a replay")

			_, err := q.Search(ctx, Request{Channel: "email"})
			var re *RequestError
			if !errors.As(err, &re) || re.Field != "channel" || !strings.Contains(re.Reason, `"email"`) {
				t.Errorf("search channel email: %v; want a RequestError of field channel naming it", err)
			}
		})
	}
}

// TestChannelMappedOnEarlierGeneration: a generation created before the
// mapping had channel (strict: a document with it would be refused) gets
// the field from Setup, and a web order is then indexed and found.
func TestChannelMappedOnEarlierGeneration(t *testing.T) {
	for name, eng := range testEngines(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cfg, admin := newTestModel(t, eng)
			names := cfg.Names()
			// The earlier build's generation 1: its template's mapping without channel.
			var tmpl struct {
				Template struct {
					Settings map[string]any `json:"settings"`
					Mappings struct {
						Dynamic    string         `json:"dynamic"`
						Properties map[string]any `json:"properties"`
					} `json:"mappings"`
				} `json:"template"`
			}
			if err := json.Unmarshal(templateBody(names, 1, 0), &tmpl); err != nil {
				t.Fatal(err)
			}
			delete(tmpl.Template.Mappings.Properties, "channel")
			body, _ := json.Marshal(map[string]any{"settings": tmpl.Template.Settings, "mappings": tmpl.Template.Mappings})
			for _, step := range []func() (Response, error){
				func() (Response, error) { return eng.DeleteIndexTemplate(ctx, names.Template()) },
				func() (Response, error) { return eng.DeleteIndex(ctx, names.Index(1)) },
				func() (Response, error) { return eng.CreateIndex(ctx, names.Index(1), body) },
			} {
				if r, err := step(); err != nil || !r.OK() {
					t.Fatalf("old generation: %d %s, %v", r.Status, r.Body, err)
				}
			}
			if n, err := admin.Setup(ctx); err != nil || n != 1 {
				t.Fatalf("Setup over the earlier generation: %d, %v", n, err)
			}
			sink, err := NewSink(SinkConfig{Config: cfg})
			if err != nil {
				t.Fatal(err)
			}
			if err := sink.Write(ctx, recs(channelEvents(t)...)); err != nil {
				t.Fatalf("write a web order to the earlier generation: %v", err)
			}
			if err := admin.Refresh(ctx); err != nil {
				t.Fatal(err)
			}
			q, err := NewQuery(cfg)
			if err != nil {
				t.Fatal(err)
			}
			res, err := q.Search(ctx, Request{Channel: "web"})
			if err != nil || res.Total != 1 || res.Hits[0].OrderID != "ch-web" {
				t.Fatalf("search web on the earlier generation: %+v, %v; want ch-web", res, err)
			}
		})
	}
}
