#!/usr/bin/env python3
"""Smoke test for the local OpenSearch node (stdlib only).

    smoke.py           run every check; leaves the os-smoke-* indices behind
    smoke.py persisted check that the data of a previous run survived a restart

Port: ORDERSTREAM_SEARCH_PORT (default 59200).
"""
import json
import os
import sys
import urllib.error
import urllib.request

BASE = "http://127.0.0.1:%s" % os.environ.get("ORDERSTREAM_SEARCH_PORT", "59200")
ALIAS = "os-smoke-products"


def call(method, path, body=None, ndjson=False):
    data = None
    headers = {}
    if body is not None:
        if ndjson:
            data = "".join(json.dumps(line) + "\n" for line in body).encode()
            headers["Content-Type"] = "application/x-ndjson"
        else:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
    req = urllib.request.Request(BASE + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def ok(method, path, body=None, ndjson=False, expect=(200, 201)):
    status, resp = call(method, path, body, ndjson)
    if status not in expect:
        sys.exit("FAIL %s %s -> %s %s" % (method, path, status, json.dumps(resp)[:600]))
    return resp


def check(cond, what):
    if not cond:
        sys.exit("FAIL " + what)
    print("ok   " + what)


def tokens(body):
    return [t["token"] for t in ok("POST", "/_analyze", body)["tokens"]]


ANALYSIS = {
    "filter": {"english_stemmer": {"type": "stemmer", "language": "english"}},
    "analyzer": {
        "folded_english": {
            "type": "custom",
            "tokenizer": "standard",
            "filter": ["lowercase", "asciifolding", "english_stemmer"],
        }
    },
}
MAPPINGS = {
    "dynamic": "strict",
    "properties": {
        "sku": {"type": "keyword"},
        "name": {"type": "text", "analyzer": "folded_english"},
        "category": {"type": "keyword"},
        # Not scaled_float: 2.19.6 sorts scaled_float wrongly with search_after (see README).
        "price": {"type": "double"},
        "weight_kg": {"type": "scaled_float", "scaling_factor": 1000},
        "stock": {"type": "integer"},
    },
}
DOCS = [
    ("p1", {"sku": "p1", "name": "Crème brûlée torches", "category": "kitchen", "price": 19.99, "stock": 4, "weight_kg": 0.8}),
    ("p2", {"sku": "p2", "name": "Running shoes", "category": "sport", "price": 89.5, "stock": 10, "weight_kg": 0.65}),
    ("p3", {"sku": "p3", "name": "Café au lait bowls", "category": "kitchen", "price": 12.0, "stock": 0, "weight_kg": 1.2}),
    ("p4", {"sku": "p4", "name": "Jumping ropes", "category": "sport", "price": 7.25, "stock": 30, "weight_kg": 0.3}),
    ("p5", {"sku": "p5", "name": "Naïve art posters", "category": "decor", "price": 12.0, "stock": 2, "weight_kg": 0.15}),
]


def full():
    root = ok("GET", "/")
    check(root["version"]["number"] == "2.19.6", "version is 2.19.6")
    health = ok("GET", "/_cluster/health")
    check(health["status"] in ("green", "yellow"), "cluster health %s" % health["status"])
    call("DELETE", "/os-smoke-*")
    call("DELETE", "/_index_template/os-smoke-logs")

    # analysis-common filters and tokenizers
    check(tokens({"tokenizer": "standard", "filter": ["lowercase", "asciifolding",
                  {"type": "stemmer", "language": "english"}], "text": "Crème Brûlées RUNNING"})
          == ["creme", "brule", "run"], "asciifolding + lowercase + stemmer(english)")
    check(tokens({"tokenizer": "whitespace", "filter": ["word_delimiter"], "text": "Wi-Fi PowerShot500"})
          == ["Wi", "Fi", "Power", "Shot", "500"], "word_delimiter")
    check(tokens({"tokenizer": "keyword", "filter": [{"type": "edge_ngram", "min_gram": 1, "max_gram": 3}],
                  "text": "order"}) == ["o", "or", "ord"], "edge_ngram filter")
    check(tokens({"tokenizer": {"type": "edge_ngram", "min_gram": 2, "max_gram": 3}, "text": "abcd"})
          == ["ab", "abc"], "edge_ngram tokenizer")
    # painless with analysis-common's extension allowlist (predicate scripts)
    check(tokens({"tokenizer": "whitespace", "filter": [{"type": "predicate_token_filter",
                  "script": {"source": "token.getTerm().length() > 3"}}], "text": "a quick fox jumps"})
          == ["quick", "jumps"], "predicate_token_filter (painless + analysis extension)")

    # explicit index: custom analyzer, strict mapping
    ok("PUT", "/os-smoke-products-v1", {
        "settings": {"number_of_shards": 1, "number_of_replicas": 0, "analysis": ANALYSIS},
        "mappings": MAPPINGS,
    })
    status, resp = call("PUT", "/os-smoke-products-v1/_doc/x", {"sku": "x", "colour": "red"})
    check(status == 400 and resp["error"]["type"] == "strict_dynamic_mapping_exception",
          "strict mapping rejects unknown field (%s)" % status)

    # external versioning
    s1, _ = call("PUT", "/os-smoke-products-v1/_doc/p1?version=5&version_type=external", DOCS[0][1])
    s2, r2 = call("PUT", "/os-smoke-products-v1/_doc/p1?version=3&version_type=external", DOCS[0][1])
    s3, r3 = call("PUT", "/os-smoke-products-v1/_doc/p1?version=7&version_type=external", DOCS[0][1])
    check(s1 == 201 and s2 == 409 and r2["error"]["type"] == "version_conflict_engine_exception"
          and s3 == 200 and r3["_version"] == 7, "version_type=external: 201, lower version 409, higher 200")

    # _bulk (with external versions too)
    lines = []
    for doc_id, doc in DOCS[1:]:
        lines += [{"index": {"_index": "os-smoke-products-v1", "_id": doc_id,
                             "version": 1, "version_type": "external"}}, doc]
    bulk = ok("POST", "/_bulk", lines, ndjson=True)
    check(not bulk["errors"] and len(bulk["items"]) == 4, "_bulk indexed 4 docs")
    ok("POST", "/os-smoke-products-v1/_refresh")
    check(ok("GET", "/os-smoke-products-v1/_count")["count"] == 5, "refresh: 5 docs visible")

    hits = ok("POST", "/os-smoke-products-v1/_search",
              {"query": {"match": {"name": "creme brulee torch"}}})["hits"]["hits"]
    check([h["_id"] for h in hits][:1] == ["p1"], "match through folded_english analyzer")

    aggs = ok("POST", "/os-smoke-products-v1/_search", {
        "size": 0, "aggs": {"cats": {"terms": {"field": "category"}}}})["aggregations"]["cats"]["buckets"]
    check({b["key"]: b["doc_count"] for b in aggs} == {"kitchen": 2, "sport": 2, "decor": 1},
          "terms aggregation")

    r = ok("POST", "/os-smoke-products-v1/_search",
           {"query": {"range": {"weight_kg": {"gte": 0.3, "lt": 0.8}}}})["hits"]["hits"]
    check(sorted(h["_id"] for h in r) == ["p2", "p4"], "scaled_float range query (mapper-extras)")

    # search_after pagination on (price, sku)
    seen, after = [], None
    while True:
        body = {"size": 2, "sort": [{"price": "asc"}, {"sku": "asc"}], "query": {"match_all": {}}}
        if after:
            body["search_after"] = after
        page = ok("POST", "/os-smoke-products-v1/_search", body)["hits"]["hits"]
        if not page:
            break
        seen += [h["_id"] for h in page]
        after = page[-1]["sort"]
    check(seen == ["p4", "p3", "p5", "p1", "p2"], "search_after pages in sort order")

    # painless update script
    ok("POST", "/os-smoke-products-v1/_update/p4?refresh=true",
       {"script": {"lang": "painless", "source": "ctx._source.stock -= params.n", "params": {"n": 5}}})
    check(ok("GET", "/os-smoke-products-v1/_doc/p4")["_source"]["stock"] == 25, "painless update script")

    # index template, applied on auto-created index
    ok("PUT", "/_index_template/os-smoke-logs", {
        "index_patterns": ["os-smoke-logs-*"],
        "template": {"settings": {"number_of_shards": 1, "number_of_replicas": 0, "analysis": ANALYSIS},
                     "mappings": {"dynamic": "strict", "properties": {"msg": {"type": "text",
                                                                          "analyzer": "folded_english"}}}},
    })
    ok("PUT", "/os-smoke-logs-2026/_doc/1?refresh=true", {"msg": "Déjà vu"})
    mapping = ok("GET", "/os-smoke-logs-2026/_mapping")["os-smoke-logs-2026"]["mappings"]
    status, _ = call("PUT", "/os-smoke-logs-2026/_doc/2", {"other": 1})
    check(mapping["dynamic"] == "strict" and status == 400, "_index_template applied to auto-created index")

    # reindex into v2 and swap the alias atomically
    ok("PUT", "/os-smoke-products-v2", {
        "settings": {"number_of_shards": 1, "number_of_replicas": 0, "analysis": ANALYSIS},
        "mappings": MAPPINGS,
    })
    ok("POST", "/_aliases", {"actions": [{"add": {"index": "os-smoke-products-v1", "alias": ALIAS}}]})
    r = ok("POST", "/_reindex?refresh=true", {"source": {"index": "os-smoke-products-v1"},
                                              "dest": {"index": "os-smoke-products-v2"}})
    check(r["created"] == 5 and not r["failures"], "_reindex v1 -> v2")
    ok("POST", "/_aliases", {"actions": [
        {"remove": {"index": "os-smoke-products-v1", "alias": ALIAS}},
        {"add": {"index": "os-smoke-products-v2", "alias": ALIAS, "is_write_index": True}},
    ]})
    check(list(ok("GET", "/_alias/" + ALIAS)) == ["os-smoke-products-v2"], "_aliases atomic swap")
    r = ok("POST", "/os-smoke-products-v1/_delete_by_query?refresh=true",
           {"query": {"term": {"category": "decor"}}})
    check(r["deleted"] == 1, "_delete_by_query")
    check(ok("GET", "/" + ALIAS + "/_count")["count"] == 5, "alias serves v2 (5 docs)")
    print("smoke: all checks passed")


def persisted():
    check(list(ok("GET", "/_alias/" + ALIAS)) == ["os-smoke-products-v2"], "alias survived restart")
    check(ok("GET", "/" + ALIAS + "/_count")["count"] == 5, "docs survived restart")
    check(ok("GET", "/os-smoke-products-v1/_count")["count"] == 4, "v1 deletes survived restart")
    check(ok("GET", "/os-smoke-products-v1/_doc/p1")["_version"] == 7, "external version survived restart")
    s, _ = call("PUT", "/os-smoke-products-v1/_doc/p1?version=6&version_type=external", DOCS[0][1])
    check(s == 409, "external version still enforced after restart")
    hits = ok("POST", "/" + ALIAS + "/_search", {"query": {"match": {"name": "cafe"}}})["hits"]["hits"]
    check([h["_id"] for h in hits] == ["p3"], "analyzer works after restart")
    check("os-smoke-logs" in ok("GET", "/_index_template/os-smoke-logs")["index_templates"][0]["name"],
          "index template survived restart")
    print("smoke: persisted data ok")


if __name__ == "__main__":
    persisted() if sys.argv[1:] == ["persisted"] else full()
