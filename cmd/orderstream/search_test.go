package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/orderstream/orderstream/projections/search"
)

func TestCheckSearchFlags(t *testing.T) {
	t.Parallel()
	day := func(flag, v string, add int) search.Request {
		d, err := londonDay(flag, v, add)
		if err != nil {
			t.Fatal(err)
		}
		return search.Request{From: d}
	}
	tests := []struct {
		name     string
		give     search.Request
		from, to string
		wantErr  string
	}{
		{name: "defaults", give: search.Request{Size: 20}},
		{name: "relevance with text", give: search.Request{Text: "heart", Sort: "relevance", Size: 1}},
		{name: "unknown sort", give: search.Request{Sort: "foo", Size: 20}, wantErr: `--sort "foo": want relevance, date or total`},
		{name: "relevance without text", give: search.Request{Sort: "relevance", Size: 20}, wantErr: "--sort relevance needs a TEXT"},
		{name: "limit 0", give: search.Request{Size: 0}, wantErr: "--limit 0: want 1..100"},
		{name: "limit 101", give: search.Request{Size: 101}, wantErr: "--limit 101: want 1..100"},
		{name: "kind", give: search.Request{Kind: "credit", Size: 20}, wantErr: `--kind "credit"`},
		{name: "status", give: search.Request{Status: "foo", Size: 20}, wantErr: `--status "foo"`},
		{name: "to before from", give: search.Request{From: day("--from", "2011-12-01", 0).From, To: day("--to", "2011-11-01", 1).From, Size: 20},
			from: "2011-12-01", to: "2011-11-01", wantErr: "--to 2011-11-01 is before --from 2011-12-01"},
		{name: "same day", give: search.Request{From: day("--from", "2011-12-01", 0).From, To: day("--to", "2011-12-01", 1).From, Size: 20},
			from: "2011-12-01", to: "2011-12-01"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := checkSearchFlags(tt.give, tt.from, tt.to)
			var ue *usageError
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("err = %v, want none", err)
			case tt.wantErr != "" && (!errors.As(err, &ue) || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("err = %v, want a usage error mentioning %q", err, tt.wantErr)
			}
		})
	}
}

func TestSearchUsage(t *testing.T) {
	t.Parallel()
	err := searchUsage(errors.Join(&search.RequestError{Field: "after", Reason: `cursor "garbage" is not a Next value of this API`}))
	var ue *usageError
	if !errors.As(err, &ue) || !strings.HasPrefix(err.Error(), "--after: ") || strings.Contains(err.Error(), "invalid search request") {
		t.Fatalf("err = %v, want a usage error naming --after", err)
	}
	err = searchUsage(&search.RequestError{Field: "country", Reason: `country "Frnace" is in no order`})
	if !errors.As(err, &ue) || !strings.HasPrefix(err.Error(), "--country: ") {
		t.Fatalf("err = %v, want a usage error naming --country", err)
	}
}
