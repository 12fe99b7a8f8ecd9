package search

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/orderstream/orderstream/internal/retry"
	"golang.org/x/sync/errgroup"
)

// item is one index operation of a bulk request: document id at version
// (external), and the batch records folded into it.
type item struct {
	index   string
	id      string
	version int64
	source  []byte
	records []int
}

// appendJSONString appends s as a JSON string: '"' and '\\' escaped,
// control characters and DEL as \u00XX, everything else as it is (s is
// valid UTF-8: the envelope decoder refuses anything else). Not
// strconv.AppendQuote, whose Go escapes (\x01, \a) are not JSON.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20 || c == 0x7f:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// appendTo appends the NDJSON lines of it: the action line and the source.
func (it item) appendTo(b []byte) []byte {
	b = append(b, `{"index":{"_index":`...)
	b = appendJSONString(b, it.index)
	b = append(b, `,"_id":`...)
	b = appendJSONString(b, it.id)
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, it.version, 10)
	b = append(b, `,"version_type":"external"}}`...)
	b = append(b, '\n')
	b = append(b, it.source...)
	return append(b, '\n')
}

func (it item) size() int { return len(it.source) + len(it.index) + len(it.id) + 80 }

// chunks splits items into bulk requests of at most max bytes each (a
// single larger item makes a chunk of its own).
func chunks(items []item, max int) [][]item {
	var out [][]item
	start, size := 0, 0
	for i, it := range items {
		if i > start && size+it.size() > max {
			out = append(out, items[start:i])
			start, size = i, 0
		}
		size += it.size()
	}
	if start < len(items) {
		out = append(out, items[start:])
	}
	return out
}

// bulk indexes items with at most MaxInFlight requests of at most
// MaxBulkBytes at once. Version conflicts count as applied; items the engine
// refuses permanently add their records to rejected; anything retryable is
// sent again (only the items that failed) until RetryTimeout.
func (s *Sink) bulk(ctx context.Context, items []item, rejected map[int]error) error {
	if len(items) == 0 {
		return nil
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.cfg.MaxInFlight)
	parts := chunks(items, s.cfg.MaxBulkBytes)
	results := make([]map[int]error, len(parts))
	for i, part := range parts {
		g.Go(func() error {
			rej, err := s.bulkChunk(gctx, part)
			results[i] = rej
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for _, rej := range results {
		for i, err := range rej {
			rejected[i] = err
		}
	}
	return nil
}

// bulkItemResult is the part of a bulk response item this package reads.
type bulkItemResult struct {
	Index  string `json:"_index"`
	ID     string `json:"_id"`
	Status int    `json:"status"`
	Error  *struct {
		Type   string `json:"type"`
		Reason string `json:"reason"`
	} `json:"error"`
}

// bulkChunk sends one chunk until every item is applied, conflicted or
// permanently refused, and returns the rejected records.
func (s *Sink) bulkChunk(ctx context.Context, part []item) (map[int]error, error) {
	rejected := map[int]error{}
	pending := part
	buf := make([]byte, 0, s.cfg.MaxBulkBytes+4096)
	err := s.retry(ctx, "bulk", func(ctx context.Context) error {
		buf = buf[:0]
		for _, it := range pending {
			buf = it.appendTo(buf)
		}
		start := time.Now()
		r, err := s.eng.Bulk(ctx, buf)
		s.m.bulkSeconds.Observe(time.Since(start).Seconds())
		if err != nil {
			return err
		}
		if !r.OK() {
			ee := errorOf(fmt.Sprintf("bulk of %d documents", len(pending)), r)
			if ee.Retryable() {
				return ee
			}
			// The whole request was refused (malformed, too large): our
			// fault, not the events'. Stop and let the runtime retry.
			return backoff.Permanent(ee)
		}
		var resp struct {
			Errors bool                         `json:"errors"`
			Items  []map[string]json.RawMessage `json:"items"`
		}
		if err := json.Unmarshal(r.Body, &resp); err != nil {
			return backoff.Permanent(fmt.Errorf("bulk: decode response: %w", err))
		}
		if len(resp.Items) != len(pending) {
			return backoff.Permanent(fmt.Errorf("bulk: %d items answered for %d sent", len(resp.Items), len(pending)))
		}
		var retry []item
		var docs, conflicts int64
		var lastRetry *bulkItemResult
		for i, raw := range resp.Items {
			var res bulkItemResult
			for _, v := range raw { // one key: the action ("index")
				if err := json.Unmarshal(v, &res); err != nil {
					return backoff.Permanent(fmt.Errorf("bulk: decode item %d: %w", i, err))
				}
			}
			it := pending[i]
			switch {
			case res.Status >= 200 && res.Status < 300:
				docs++
			case res.Status == http.StatusConflict:
				conflicts++
			case retryableStatus(res.Status):
				retry = append(retry, it)
				lastRetry = &res
			default:
				reason := fmt.Sprintf("HTTP %d", res.Status)
				if res.Error != nil {
					reason = fmt.Sprintf("HTTP %d %s: %s", res.Status, res.Error.Type, res.Error.Reason)
				}
				for _, rec := range it.records {
					rejected[rec] = fmt.Errorf("index order %s v%d into %s: %s", it.id, it.version, it.index, reason)
				}
			}
		}
		s.count(func(st *Stats) { st.Documents += docs; st.Conflicts += conflicts })
		s.m.documents.Add(float64(docs))
		s.m.conflicts.Add(float64(conflicts))
		pending = retry
		if len(retry) > 0 {
			e := &EngineError{Op: fmt.Sprintf("bulk: %d of %d items", len(retry), len(resp.Items)), Status: lastRetry.Status}
			if lastRetry.Error != nil {
				e.Type, e.Reason = lastRetry.Error.Type, lastRetry.Error.Reason
			}
			return e
		}
		return nil
	})
	return rejected, err
}

// retry runs op, each attempt under RequestTimeout, until it succeeds,
// returns a permanent error, ctx ends, or the engine stayed unavailable for
// RetryTimeout; a non-retryable *EngineError stops at once.
func (s *Sink) retry(ctx context.Context, what string, op func(context.Context) error) error {
	attempt := 0
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		attempt++
		if attempt > 1 {
			s.count(func(st *Stats) { st.Retries++ })
			s.m.retries.Inc()
		}
		rctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
		err := op(rctx)
		cancel()
		if err != nil && ctx.Err() != nil {
			return struct{}{}, backoff.Permanent(ctx.Err())
		}
		var ee *EngineError
		if err != nil && errors.As(err, &ee) && !ee.Retryable() {
			return struct{}{}, backoff.Permanent(err)
		}
		if err != nil {
			s.log.Warn("search engine unavailable, retrying", "op", what, "attempt", attempt, "err", err)
		}
		return struct{}{}, err
	},
		backoff.WithBackOff(retry.Exponential(100*time.Millisecond, 5*time.Second)),
		backoff.WithMaxElapsedTime(s.cfg.RetryTimeout),
	)
	if err != nil {
		return fmt.Errorf("search sink: %s: %w", what, err)
	}
	return nil
}
