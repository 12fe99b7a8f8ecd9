package search

import "encoding/json"

// ProductAnalyzer is the analyzer of product text (lines.description,
// descriptions): standard tokenizer, lowercase, ASCII folding, English
// possessive and stemmer (from the analysis-common module that both engines
// ship), so "Hearts", "HEART'S" and "heart" match each other.
const ProductAnalyzer = "product_text"

// templateBody returns the composable index template for the generations of
// n (pattern <prefix>_v*): strict mapping, the product analyzer and keyword
// fields for filters and facets. The same JSON goes to both engines.
// addedFields are the fields the mapping gained after generations were
// created without them: Admin.Setup puts them on every existing generation
// (adding a field to a strict mapping is allowed; its documents written
// before simply lack it).
func addedFields() []byte {
	return []byte(`{"properties":{"channel":{"type":"keyword"}}}`)
}

func templateBody(n Names, shards, replicas int) []byte {
	keyword := map[string]any{"type": "keyword"}
	stored := map[string]any{"type": "keyword", "index": false, "doc_values": false} // exact decimal strings, returned but not searched
	text := map[string]any{"type": "text", "analyzer": ProductAnalyzer}
	t := map[string]any{
		"index_patterns": []string{n.Pattern()},
		// Above the default templates; distinct prefixes never overlap.
		"priority": 200,
		"_meta":    map[string]any{"owner": "orderstream projections/search", "schema": 1},
		"template": map[string]any{
			"settings": map[string]any{
				"number_of_shards":   shards,
				"number_of_replicas": replicas,
				"analysis": map[string]any{
					"filter": map[string]any{
						"english_possessive": map[string]any{"type": "stemmer", "language": "possessive_english"},
						"english_stemmer":    map[string]any{"type": "stemmer", "language": "english"},
					},
					"normalizer": map[string]any{
						"code": map[string]any{"type": "custom", "filter": []string{"lowercase"}},
					},
					"analyzer": map[string]any{
						ProductAnalyzer: map[string]any{
							"type":      "custom",
							"tokenizer": "standard",
							"filter":    []string{"lowercase", "asciifolding", "english_possessive", "english_stemmer"},
						},
					},
				},
			},
			"mappings": map[string]any{
				"dynamic": "strict",
				"properties": map[string]any{
					"order_id":     keyword,
					"order_number": map[string]any{"type": "keyword", "normalizer": "code"}, // "c536379" finds C536379
					"kind":         keyword,
					"status":       keyword,
					"customer_id":  keyword,
					"country":      keyword,
					"channel":      keyword, // absent when not known; also put on earlier generations (addedFields)
					"currency":     keyword,
					"placed_at":    map[string]any{"type": "date"},
					"updated_at":   map[string]any{"type": "date"},
					"total":        stored,
					"total_milli":  map[string]any{"type": "long"},
					"paid":         stored,
					"refunded":     stored,
					"line_count":   map[string]any{"type": "integer"},
					"lines": map[string]any{
						"type":    "nested",
						"dynamic": "strict",
						"properties": map[string]any{
							"line_no":     map[string]any{"type": "integer"},
							"stock_code":  keyword,
							"description": text,
							"quantity":    map[string]any{"type": "long"},
							"unit_price":  stored,
						},
					},
					"stock_codes":  keyword,
					"descriptions": text,
					"version":      map[string]any{"type": "long"},
					"deleted":      map[string]any{"type": "boolean"},
				},
			},
		},
	}
	b, _ := json.Marshal(t) // maps of strings and ints always marshal
	return b
}
