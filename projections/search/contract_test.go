package search

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/orderstream/orderstream/consumers"
	"github.com/orderstream/orderstream/internal/readmodeltest"
)

// TestContract runs the read-model contract suite on the search engine,
// once per adapter.
func TestContract(t *testing.T) {
	for name, eng := range testEngines(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			readmodeltest.Run(t, contractModel{eng: eng, kind: name})
		})
	}
}

type contractModel struct {
	eng  Engine
	kind string
}

// ErrRejected is nil: the search sink has no sentinel of its own; its
// rejections wrap the schemas errors the suite checks.
func (contractModel) ErrRejected() error { return nil }

func (m contractModel) New(t *testing.T) readmodeltest.Instance {
	cfg, _ := newTestModel(t, m.eng)
	rm, err := NewReadModel(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &contractInstance{cfg: cfg, ReadModel: rm}
}

func (m contractModel) Unreachable(t *testing.T) consumers.Sink {
	eng, err := NewEngine(EngineConfig{Kind: m.kind, URL: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSink(SinkConfig{Config: Config{Engine: eng, Prefix: "unreachable"}, Generation: 1, RetryTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// contractInstance is one read model (its own prefix); its ReadModel (the
// projections.ReadModel that rebuild and the generations commands use)
// gives the generation verbs and the sinks.
type contractInstance struct {
	cfg Config
	*ReadModel
}

func (in *contractInstance) Sink(t *testing.T, n uint32) consumers.Sink {
	s, closeSink, err := in.ReadModel.Sink(t.Context(), n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = closeSink() })
	return s
}

// Facts reads every document of generation n (the read alias for 0) after
// a refresh; the suite's instances hold far fewer than one page.
func (in *contractInstance) Facts(ctx context.Context, n uint32) (readmodeltest.Facts, error) {
	names := in.cfg.Names()
	index := names.ReadAlias()
	if n > 0 {
		index = names.Index(int(n))
	}
	if err := in.Admin().Refresh(ctx); err != nil {
		return nil, err
	}
	body := []byte(`{"size": 10000, "version": true, "query": {"match_all": {}}}`)
	r, err := in.cfg.Engine.Search(ctx, index, body)
	if err != nil {
		return nil, err
	}
	if err := check("search "+index, r); err != nil {
		return nil, err
	}
	var res struct {
		Hits struct {
			Hits []struct {
				ID      string `json:"_id"`
				Version int64  `json:"_version"`
				Source  Order  `json:"_source"`
			} `json:"hits"`
		} `json:"hits"`
	}
	if err := json.Unmarshal(r.Body, &res); err != nil {
		return nil, fmt.Errorf("search %s: decode: %w", index, err)
	}
	out := readmodeltest.Facts{}
	for _, h := range res.Hits.Hits {
		o := h.Source
		if o.Version != h.Version || o.OrderID != h.ID || o.LineCount != len(o.Lines) {
			return nil, fmt.Errorf("document %s (external version %d): order %s, version %d, line_count %d with %d lines",
				h.ID, h.Version, o.OrderID, o.Version, o.LineCount, len(o.Lines))
		}
		out[h.ID] = readmodeltest.Fact{Version: o.Version, Status: o.Status, Total: o.Total.String(), Lines: o.LineCount}
	}
	return out, nil
}
