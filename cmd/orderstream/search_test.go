package main

import (
	"errors"
	"strings"
	"testing"
	"time"

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
		{name: "channel", give: search.Request{Channel: "email", Size: 20}, wantErr: `--channel: channel "email": want one of web, phone, marketplace, store, unknown`},
		{name: "channel unknown", give: search.Request{Channel: "unknown", Size: 20}},
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

func TestPrintSearchTable(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	// 2011-06-01 12:30 UTC is 13:30 in London (BST).
	res := search.Result{Total: 1, Hits: []search.Order{{OrderNumber: "555000", PlacedAt: time.Date(2011, 6, 1, 12, 30, 0, 0, time.UTC), Kind: "sale", Status: "paid", Country: "France"}},
		Facets: search.Facets{Kind: []search.Bucket{{Key: "sale", Count: 1}}}}
	if err := printSearchTable(&b, res); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"PLACED (London)", "2011-06-01 13:30", "1 order matches; showing 1", "kind:    sale 1"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "status:") || strings.Contains(out, "country:") {
		t.Errorf("output prints empty facets:\n%s", out)
	}
	b.Reset()
	if err := printSearchTable(&b, search.Result{}); err != nil {
		t.Fatal(err)
	}
	if out := b.String(); !strings.Contains(out, "0 orders match") || strings.Contains(out, "kind:") {
		t.Errorf("empty result:\n%s", out)
	}
}
