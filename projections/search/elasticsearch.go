package search

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/url"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"
	"github.com/orderstream/orderstream/internal/connect"
)

// elasticSearch is the Engine adapter for Elasticsearch 8/9
// (github.com/elastic/go-elasticsearch/v8), the production target. It only
// transports the shared JSON bodies. The client refuses servers that do not
// answer with the header X-Elastic-Product: Elasticsearch.
type elasticSearch struct {
	c   *elasticsearch.Client
	url string // cfg.URL, password redacted; empty with a cloud id
}

func newElasticsearch(cfg EngineConfig) (*elasticSearch, error) {
	ec := elasticsearch.Config{
		CloudID:      cfg.CloudID,
		Username:     cfg.Username,
		Password:     cfg.Password,
		APIKey:       cfg.APIKey,
		Transport:    cfg.Transport,
		DisableRetry: true,
	}
	if cfg.CloudID == "" {
		ec.Addresses = cfg.urls()
	}
	c, err := elasticsearch.NewClient(ec)
	if err != nil {
		return nil, fmt.Errorf("elasticsearch client for %s: %s", connect.RedactURL(cfg.URL), connect.RedactURL(err.Error()))
	}
	return &elasticSearch{c: c, url: connect.RedactURL(cfg.URL)}, nil
}

func (e *elasticSearch) Name() string { return EngineElasticsearch }

type esRequest interface {
	Do(ctx context.Context, t esapi.Transport) (*esapi.Response, error)
}

func (e *elasticSearch) do(ctx context.Context, req esRequest) (Response, error) {
	resp, err := req.Do(ctx, e.c)
	if err != nil {
		return Response{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return Response{}, fmt.Errorf("read response body: %w", err)
	}
	return Response{Status: resp.StatusCode, Body: body, URL: e.url}, nil
}

func (e *elasticSearch) Bulk(ctx context.Context, body []byte) (Response, error) {
	return e.do(ctx, esapi.BulkRequest{Body: bytes.NewReader(body)})
}

func (e *elasticSearch) MGet(ctx context.Context, index string, body []byte) (Response, error) {
	return e.do(ctx, esapi.MgetRequest{Index: index, Body: bytes.NewReader(body)})
}

// Get escapes index and id as path segments: go-elasticsearch pastes them
// into the URL as they are, so an id such as "../../_cluster/settings" or
// "x?refresh=true" would leave /<index>/_doc/ or add query parameters. (The
// OpenSearch client escapes path segments itself.)
func (e *elasticSearch) Get(ctx context.Context, index, id string) (Response, error) {
	return e.do(ctx, esapi.GetRequest{Index: url.PathEscape(index), DocumentID: url.PathEscape(id)})
}

func (e *elasticSearch) Search(ctx context.Context, index string, body []byte) (Response, error) {
	return e.do(ctx, esapi.SearchRequest{Index: []string{index}, Body: bytes.NewReader(body)})
}

func (e *elasticSearch) PutIndexTemplate(ctx context.Context, name string, body []byte) (Response, error) {
	return e.do(ctx, esapi.IndicesPutIndexTemplateRequest{Name: name, Body: bytes.NewReader(body)})
}

func (e *elasticSearch) DeleteIndexTemplate(ctx context.Context, name string) (Response, error) {
	return e.do(ctx, esapi.IndicesDeleteIndexTemplateRequest{Name: name})
}

func (e *elasticSearch) CreateIndex(ctx context.Context, index string, body []byte) (Response, error) {
	req := esapi.IndicesCreateRequest{Index: index}
	if body != nil {
		req.Body = bytes.NewReader(body)
	}
	return e.do(ctx, req)
}

func (e *elasticSearch) DeleteIndex(ctx context.Context, index string) (Response, error) {
	return e.do(ctx, esapi.IndicesDeleteRequest{Index: []string{index}})
}

func (e *elasticSearch) Aliases(ctx context.Context, pattern string) (Response, error) {
	return e.do(ctx, esapi.IndicesGetAliasRequest{Index: []string{pattern}})
}

func (e *elasticSearch) Indices(ctx context.Context, pattern string) (Response, error) {
	return e.do(ctx, esapi.IndicesGetRequest{Index: []string{pattern}})
}

func (e *elasticSearch) PutMapping(ctx context.Context, index string, body []byte) (Response, error) {
	return e.do(ctx, esapi.IndicesPutMappingRequest{Index: []string{index}, Body: bytes.NewReader(body)})
}

func (e *elasticSearch) UpdateAliases(ctx context.Context, body []byte) (Response, error) {
	return e.do(ctx, esapi.IndicesUpdateAliasesRequest{Body: bytes.NewReader(body)})
}

func (e *elasticSearch) Refresh(ctx context.Context, index string) (Response, error) {
	return e.do(ctx, esapi.IndicesRefreshRequest{Index: []string{index}})
}
