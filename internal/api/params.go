package api

import (
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/orderstream/orderstream/schemas"
)

// dateLayout is the only date format the API accepts: a calendar day.
const dateLayout = "2006-01-02"

// maxTextParam bounds free-text parameters (bytes).
const maxTextParam = 200

// query reads and validates parameters of one request, collecting every
// problem so that the client learns all of them at once.
type query struct {
	v       url.Values
	errs    []*paramError
	read    map[string]bool // parameters the handler asked for
	checked bool            // unknown parameters reported
}

func newQuery(v url.Values) *query { return &query{v: v, read: map[string]bool{}} }

// values returns every value of parameter name, marking it as known.
func (q *query) values(name string) []string {
	q.read[name] = true
	return q.v[name]
}

func (q *query) fail(name, format string, args ...any) {
	q.errs = append(q.errs, badParam(name, format, args...))
}

// str returns the parameter's value ("" when absent), rejecting repeats,
// values longer than maxTextParam bytes, invalid UTF-8 and control
// characters.
func (q *query) str(name string) string {
	vals := q.values(name)
	if len(vals) == 0 {
		return ""
	}
	if len(vals) > 1 {
		q.fail(name, "given %d times; give it once", len(vals))
		return ""
	}
	s := strings.TrimSpace(vals[0])
	if len(s) > maxTextParam {
		q.fail(name, "is %d bytes long; at most %d", len(s), maxTextParam)
		return ""
	}
	if !utf8.ValidString(s) {
		q.fail(name, "%q is not valid UTF-8", s)
		return ""
	}
	if strings.IndexFunc(s, unicode.IsControl) >= 0 {
		q.fail(name, "%q contains a control character", s)
		return ""
	}
	return s
}

// date parses a YYYY-MM-DD calendar day; zero when absent.
func (q *query) date(name string) time.Time {
	s := q.str(name)
	if s == "" {
		return time.Time{}
	}
	d, err := time.Parse(dateLayout, s)
	if err != nil {
		q.fail(name, "%q is not a date YYYY-MM-DD", s)
		return time.Time{}
	}
	if lo, hi := dateBounds(); d.Before(lo) || d.After(hi) {
		q.fail(name, "%s is outside %s to %s, the days an event can carry", s, lo.Format(dateLayout), hi.Format(dateLayout))
		return time.Time{}
	}
	return d
}

// dateBounds returns the first and last calendar day a from or to
// parameter may name: the days of the event contract's time range
// (schemas.MinTime .. schemas.MaxTime, 1970-01-01 .. 2105-12-31 UTC)
// without its first and last, so that a day's bounds in Europe/London
// (±1 hour from UTC) stay inside the range every read model holds.
func dateBounds() (first, last time.Time) {
	day := 24 * time.Hour
	return schemas.MinTime().Truncate(day).AddDate(0, 0, 1), schemas.MaxTime().Truncate(day).AddDate(0, 0, -1)
}

// oneOf returns the value if it is one of allowed, def when absent.
func (q *query) oneOf(name, def string, allowed ...string) string {
	s := q.str(name)
	if s == "" {
		return def
	}
	for _, a := range allowed {
		if s == a {
			return s
		}
	}
	q.fail(name, "%q is not one of %s", s, strings.Join(allowed, ", "))
	return def
}

// intIn parses an integer in [lo, hi]; def when absent.
func (q *query) intIn(name string, def, lo, hi int) int {
	s := q.str(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		q.fail(name, "%q is not an integer", s)
		return def
	}
	if n < lo || n > hi {
		q.fail(name, "%d is out of range; want %d to %d", n, lo, hi)
		return def
	}
	return n
}

// dateRange reads from and to (both optional, inclusive) and checks their
// order.
func (q *query) dateRange() (from, to time.Time) {
	from, to = q.date("from"), q.date("to")
	if !from.IsZero() && !to.IsZero() && to.Before(from) {
		q.fail("to", "%s is before from %s", to.Format(dateLayout), from.Format(dateLayout))
	}
	return from, to
}

// ok reports whether every parameter was valid. The first call also
// reports every parameter the handler did not read: a
// misspelt parameter ("form" for "from") must not be ignored silently.
// Handlers call it after reading all of theirs.
func (q *query) ok() bool {
	if !q.checked {
		q.checked = true
		known := slices.Sorted(maps.Keys(q.read))
		for _, name := range slices.Sorted(maps.Keys(q.v)) {
			if !q.read[name] {
				q.fail(name, "is not a parameter of this endpoint (it takes %s)", strings.Join(known, ", "))
			}
		}
	}
	return len(q.errs) == 0
}
