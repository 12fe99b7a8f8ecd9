package search

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/opensearch-project/opensearch-go/v4"
	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"
	"github.com/orderstream/orderstream/internal/connect"
)

// openSearch is the Engine adapter for OpenSearch 2.x
// (github.com/opensearch-project/opensearch-go/v4). It only transports the
// shared JSON bodies.
type openSearch struct {
	c   *opensearch.Client
	url string // cfg.URL, password redacted
}

func newOpenSearch(cfg EngineConfig) (*openSearch, error) {
	oc := opensearch.Config{
		Addresses:    cfg.urls(),
		Username:     cfg.Username,
		Password:     cfg.Password,
		Transport:    cfg.Transport,
		DisableRetry: true,
	}
	if cfg.APIKey != "" {
		oc.Header = http.Header{"Authorization": []string{"ApiKey " + cfg.APIKey}}
	}
	c, err := opensearch.NewClient(oc)
	if err != nil {
		return nil, fmt.Errorf("opensearch client for %s: %s", connect.RedactURL(cfg.URL), connect.RedactURL(err.Error()))
	}
	return &openSearch{c: c, url: connect.RedactURL(cfg.URL)}, nil
}

func (o *openSearch) Name() string { return EngineOpenSearch }

func (o *openSearch) do(ctx context.Context, method string, req opensearch.Request) (Response, error) {
	resp, err := opensearch.Do(ctx, o.c, method, req, (*opensearch.NoBody)(nil))
	if resp == nil {
		if err == nil {
			err = fmt.Errorf("no response")
		}
		return Response{}, err
	}
	var body []byte
	if resp.Body != nil {
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return Response{}, fmt.Errorf("read response body: %w", err)
		}
	}
	return Response{Status: resp.StatusCode, Body: body, URL: o.url}, nil
}

func (o *openSearch) Bulk(ctx context.Context, body []byte) (Response, error) {
	return o.do(ctx, http.MethodPost, opensearchapi.BulkReq{Body: bytes.NewReader(body)})
}

func (o *openSearch) MGet(ctx context.Context, index string, body []byte) (Response, error) {
	return o.do(ctx, http.MethodPost, opensearchapi.MGetReq{Index: index, Body: bytes.NewReader(body)})
}

func (o *openSearch) Get(ctx context.Context, index, id string) (Response, error) {
	return o.do(ctx, http.MethodGet, opensearchapi.DocumentGetReq{Index: index, DocumentID: id})
}

func (o *openSearch) Search(ctx context.Context, index string, body []byte) (Response, error) {
	return o.do(ctx, http.MethodPost, opensearchapi.SearchReq{Indices: []string{index}, Body: bytes.NewReader(body)})
}

func (o *openSearch) PutIndexTemplate(ctx context.Context, name string, body []byte) (Response, error) {
	return o.do(ctx, http.MethodPut, opensearchapi.IndexTemplateCreateReq{IndexTemplate: name, Body: bytes.NewReader(body)})
}

func (o *openSearch) DeleteIndexTemplate(ctx context.Context, name string) (Response, error) {
	return o.do(ctx, http.MethodDelete, opensearchapi.IndexTemplateDeleteReq{IndexTemplate: name})
}

func (o *openSearch) CreateIndex(ctx context.Context, index string, body []byte) (Response, error) {
	req := opensearchapi.IndicesCreateReq{Index: index}
	if body != nil {
		req.Body = bytes.NewReader(body)
	}
	return o.do(ctx, http.MethodPut, req)
}

func (o *openSearch) DeleteIndex(ctx context.Context, index string) (Response, error) {
	return o.do(ctx, http.MethodDelete, opensearchapi.IndicesDeleteReq{Indices: []string{index}})
}

func (o *openSearch) Aliases(ctx context.Context, pattern string) (Response, error) {
	return o.do(ctx, http.MethodGet, opensearchapi.AliasGetReq{Indices: []string{pattern}})
}

func (o *openSearch) Indices(ctx context.Context, pattern string) (Response, error) {
	return o.do(ctx, http.MethodGet, opensearchapi.IndicesGetReq{Indices: []string{pattern}})
}

func (o *openSearch) PutMapping(ctx context.Context, index string, body []byte) (Response, error) {
	return o.do(ctx, http.MethodPut, opensearchapi.MappingPutReq{Indices: []string{index}, Body: bytes.NewReader(body)})
}

func (o *openSearch) UpdateAliases(ctx context.Context, body []byte) (Response, error) {
	return o.do(ctx, http.MethodPost, opensearchapi.AliasesReq{Body: bytes.NewReader(body)})
}

func (o *openSearch) Refresh(ctx context.Context, index string) (Response, error) {
	return o.do(ctx, http.MethodPost, opensearchapi.IndicesRefreshReq{Index: []string{index}})
}
