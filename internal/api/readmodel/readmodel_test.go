package readmodel

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/orderstream/orderstream/internal/api"
	"github.com/orderstream/orderstream/projections/search"
)

func TestPlacedBounds(t *testing.T) {
	t.Parallel()
	d := func(s string) time.Time {
		v, err := time.Parse("2006-01-02", s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name             string
		from, to         time.Time
		wantFrom, wantTo string
	}{
		{"winter (GMT)", d("2010-12-01"), d("2010-12-31"), "2010-12-01T00:00:00Z", "2011-01-01T00:00:00Z"},
		{"summer (BST)", d("2011-06-01"), d("2011-06-30"), "2011-05-31T23:00:00Z", "2011-06-30T23:00:00Z"},
		{"across the clock change", d("2011-03-27"), d("2011-03-27"), "2011-03-27T00:00:00Z", "2011-03-27T23:00:00Z"},
		{"open", time.Time{}, time.Time{}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, to := placedBounds(tt.from, tt.to)
			str := func(x time.Time) string {
				if x.IsZero() {
					return ""
				}
				return x.Format(time.RFC3339)
			}
			if str(f) != tt.wantFrom || str(to) != tt.wantTo {
				t.Fatalf("placedBounds = %s, %s; want %s, %s", str(f), str(to), tt.wantFrom, tt.wantTo)
			}
		})
	}
}

func TestAPIInvalid(t *testing.T) {
	t.Parallel()
	err := apiInvalid(errors.Join(&search.RequestError{Field: "after", Reason: "cursor \"x\" is not a Next value of this API"},
		&search.RequestError{Field: "sort", Reason: "sort \"foo\": want date, total or relevance"}))
	if !errors.Is(err, api.ErrInvalidRequest) {
		t.Fatalf("%v does not wrap api.ErrInvalidRequest", err)
	}
	var pe *api.ParamError
	if !errors.As(err, &pe) || pe.Name != "after" {
		t.Fatalf("%v: first ParamError %+v, want after", err, pe)
	}
	if n := strings.Count(err.Error(), search.ErrInvalidRequest.Error()); n != 0 {
		t.Fatalf("%q repeats the prefix %d times", err, n)
	}
}
