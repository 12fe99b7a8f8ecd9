package readmodel

import (
	"testing"
	"time"
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
