package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Read-your-writes: a query that carries a consistency token waits, within
// a bound, until its read model has applied that version of the order.
const (
	// DefaultWaitLimit caps Prefer: wait=N: 10 s.
	DefaultWaitLimit = 10 * time.Second
	// defaultWait is the wait of a query with a token and no Prefer: wait.
	defaultWait = 5 * time.Second
	// waitPoll is how soon a waiting query asks its read model again: 20
	// ms, growing by half after each ask to at most waitPollMax, so that
	// many waiting queries do not flood the read model (a waiting query
	// costs at most 10 indexed lookups a second). A wait therefore answers
	// at most 20 ms late in its first 100 ms and at most 100 ms late after
	// 400 ms (the resolution of the commit → queryable latencies
	// `orderstream load` measures through it).
	waitPoll    = 20 * time.Millisecond
	waitPollMax = 100 * time.Millisecond
)

// OrderVersions is implemented by a read model that can tell which version
// of an order it has applied (0: none of its events); the API's Analytics
// and Search are asked for it by type assertion. Safe for concurrent use.
type OrderVersions interface {
	OrderVersion(ctx context.Context, id string) (int64, error)
}

// consistent wraps h so that it answers only once the read model rm has
// applied the version of the order named by the request: the
// Consistency-Token header (any query), or, with orderParam set, the
// min_version query parameter and the path's {id} (order detail). Without
// either it runs h at once. The wait is Prefer: wait=N seconds (RFC 7240),
// default 5, at most Config.WaitLimit and the request timeout less one
// second; when the bound is reached the answer is 503 with Retry-After: 1
// and problem rule read-model-behind naming the version the read model has
// (current_version).
func (s *Server) consistent(model string, rm any, orderParam bool, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, want, fromPath, ok := s.consistencyTarget(w, r, orderParam)
		if !ok {
			return
		}
		if want == 0 {
			h(w, r)
			return
		}
		ov, isOV := rm.(OrderVersions)
		if !isOV {
			writeProblem(w, r, Problem{Status: http.StatusNotImplemented, Detail: "the " + model + " read model cannot wait for a consistency token"})
			return
		}
		if fromPath {
			ov = &pathOrder{rm: ov, search: s.search}
		}
		if s.waitApplied(w, r, model, ov, id, want) {
			h(w, r)
		}
	}
}

// consistencyTarget reads the order and version a query waits for (want 0:
// none); fromPath: id is the path's {id} (min_version), an order id or an
// order number. It answers 400 itself and returns ok false on a bad value.
func (s *Server) consistencyTarget(w http.ResponseWriter, r *http.Request, orderParam bool) (id string, want int64, fromPath, ok bool) {
	var errs []*paramError
	if toks := r.Header.Values("Consistency-Token"); len(toks) > 1 {
		// One token is one order: a second would be waited for by no one.
		errs = append(errs, badParam("Consistency-Token", "given %d times; give the token of the order to wait for once", len(toks)))
	} else if tok := r.Header.Get("Consistency-Token"); tok != "" {
		var err error
		if id, want, err = ParseConsistencyToken(tok); err != nil {
			errs = append(errs, badParam("Consistency-Token", "%v", err))
		}
	}
	if orderParam {
		q := r.URL.Query()
		switch vals := q["min_version"]; {
		case len(vals) > 1:
			errs = append(errs, badParam("min_version", "given %d times; give it once", len(vals)))
		case len(vals) == 1:
			n, err := strconv.ParseInt(vals[0], 10, 64)
			if err != nil || n < 1 {
				errs = append(errs, badParam("min_version", "%q: want an order version, an integer of at least 1 (a command's \"version\")", vals[0]))
			} else if want == 0 || n > want {
				id, want, fromPath = r.PathValue("id"), n, true
			}
		}
		for name := range q {
			if name != "min_version" {
				errs = append(errs, badParam(name, "is not a parameter of this endpoint (it takes min_version)"))
			}
		}
	}
	if len(errs) > 0 {
		writeBadParams(w, r, errs)
		return "", 0, false, false
	}
	return id, want, fromPath, true
}

// pathOrder asks rm for the version of the order that order detail's path
// names: an order id, or an order number (GET /api/v1/orders/536365). rm
// knows orders by id only, so when it has none with that id on the first
// ask, the reference is looked up once as order detail does (Search.Get)
// and the order's id asked for from then on. Without it min_version on an
// order number would wait to its bound and answer "version 0" for an order
// the read model holds. Not safe for concurrent use (one per request).
type pathOrder struct {
	rm      OrderVersions
	search  Search
	id      string // the order id to ask for; "" before the first ask
	visited bool
}

func (p *pathOrder) OrderVersion(ctx context.Context, ref string) (int64, error) {
	if p.visited {
		return p.rm.OrderVersion(ctx, p.id)
	}
	v, err := p.rm.OrderVersion(ctx, ref)
	if err != nil || v > 0 {
		p.id, p.visited = ref, err == nil
		return v, err
	}
	p.id, p.visited = ref, true
	o, err := p.search.Get(ctx, ref)
	switch {
	case errors.Is(err, ErrNotFound):
		return 0, nil // not there yet: ask by ref, as an id
	case err != nil:
		return 0, err
	}
	if o.ID != "" {
		p.id = o.ID
	}
	return p.rm.OrderVersion(ctx, p.id)
}

// preferWait returns the wait a request asks for with Prefer: wait=N (whole
// seconds), defaultWait without one, capped; applied tells whether the
// preference was honoured as given.
func (s *Server) preferWait(r *http.Request) (d time.Duration, asked bool) {
	d = defaultWait
	limit := min(s.cfg.WaitLimit, s.cfg.RequestTimeout-time.Second)
	for _, v := range r.Header.Values("Prefer") {
		for _, pref := range strings.Split(v, ",") {
			name, val, _ := strings.Cut(strings.TrimSpace(pref), "=")
			if !strings.EqualFold(strings.TrimSpace(name), "wait") {
				continue
			}
			n, err := strconv.ParseInt(strings.Trim(strings.TrimSpace(val), `"`), 10, 64)
			if errors.Is(err, strconv.ErrRange) && n > 0 {
				err = nil // more seconds than int64 holds: the most there is
			}
			if err == nil && n >= 0 {
				// Capped before it becomes a Duration: N seconds past
				// 2^63 ns would wrap to a negative wait.
				d, asked = time.Duration(min(n, int64(limit/time.Second)+1))*time.Second, true
			}
		}
	}
	if d > limit {
		d = max(limit, 0)
	}
	return d, asked
}

// waitApplied polls rm (waitPoll, growing) until it has applied version want of
// order id, and reports whether it did; otherwise it has answered.
func (s *Server) waitApplied(w http.ResponseWriter, r *http.Request, model string, rm OrderVersions, id string, want int64) bool {
	wait, asked := s.preferWait(r)
	if asked {
		w.Header().Set("Preference-Applied", "wait="+strconv.Itoa(int(wait/time.Second)))
	}
	bound := time.NewTimer(wait)
	defer bound.Stop()
	poll := waitPoll
	next := time.NewTimer(poll)
	defer next.Stop()
	var have int64
	for {
		v, err := rm.OrderVersion(r.Context(), id)
		if err != nil {
			s.backendError(w, r, model, err)
			return false
		}
		have = max(have, v)
		if v >= want {
			return true
		}
		select {
		case <-next.C:
			poll = min(poll*3/2, waitPollMax)
			next.Reset(poll)
			continue
		case <-r.Context().Done():
			s.backendError(w, r, model, r.Context().Err())
			return false
		case <-bound.C:
		}
		w.Header().Set("Retry-After", "1")
		writeProblem(w, r, Problem{Status: http.StatusServiceUnavailable, Type: problemType("read-model-behind"), Rule: "read-model-behind",
			Detail: "the " + model + " read model has applied version " + strconv.FormatInt(have, 10) + " of order " + quote(id) +
				", not yet " + strconv.FormatInt(want, 10) + ", after waiting " + wait.String() + " (Prefer: wait=N waits up to " +
				strconv.Itoa(int(min(s.cfg.WaitLimit, s.cfg.RequestTimeout-time.Second)/time.Second)) + " s); try again",
			CurrentVersion: have})
		return false
	}
}

// SearchedVersions is implemented by a search read model whose searches
// see an order later than its gets (a search engine's refresh): the search
// endpoint waits for SearchedVersion, order detail for OrderVersion.
type SearchedVersions interface {
	SearchedVersion(ctx context.Context, id string) (int64, error)
}

type searched struct{ SearchedVersions }

func (s searched) OrderVersion(ctx context.Context, id string) (int64, error) {
	return s.SearchedVersion(ctx, id)
}

// searchedOf returns what the search endpoint waits on: rm's
// SearchedVersion when it has one, else rm itself.
func searchedOf(rm any) any {
	if sv, ok := rm.(SearchedVersions); ok {
		return searched{sv}
	}
	return rm
}
