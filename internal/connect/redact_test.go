package connect

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestSecretNeverPrints(t *testing.T) {
	t.Parallel()
	s := NewSecret("hunter2-secret")
	type holder struct {
		Password Secret `json:"password"`
	}
	var logBuf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logBuf, nil))
	log.Info("x", "password", s, "holder", holder{s})
	slog.New(slog.NewTextHandler(&logBuf, nil)).Info("x", "password", s)
	js, err := json.Marshal(holder{s})
	if err != nil {
		t.Fatal(err)
	}
	text, _ := s.MarshalText()
	outs := map[string]string{
		"%v": fmt.Sprintf("%v", s), "%s": fmt.Sprintf("%s", s), "%q": fmt.Sprintf("%q", s), "%+v": fmt.Sprintf("%+v", holder{s}),
		"%#v": fmt.Sprintf("%#v", holder{s}), "%x": fmt.Sprintf("%x", s), "String": s.String(), "json": string(js),
		"text": string(text), "slog": logBuf.String(), "error": fmt.Errorf("login with %v failed", s).Error(),
	}
	for how, out := range outs {
		if strings.Contains(out, "hunter2") || strings.Contains(out, fmt.Sprintf("%x", "hunter2")) {
			t.Errorf("%s shows the secret: %s", how, out)
		}
		if !strings.Contains(out, Redacted) {
			t.Errorf("%s = %q, want %s in it", how, out, Redacted)
		}
	}
	if s.Reveal() != "hunter2-secret" {
		t.Errorf("Reveal = %q", s.Reveal())
	}
	if (Secret{}).String() != "" {
		t.Errorf("the empty secret prints %q, want empty", Secret{}.String())
	}
}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	tests := []struct{ give, want string }{
		{"postgres://u:s3cret@h:5432/db?sslmode=verify-full", "postgres://u:xxxxx@h:5432/db?sslmode=verify-full"},
		{"postgres://u@h/db", "postgres://u@h/db"},
		{"postgres://h/db?user=u&password=s3cret&sslmode=disable", "postgres://h/db?user=u&password=xxxxx&sslmode=disable"},
		{"host=h user=u password=s3cret dbname=db", "host=h user=u password=xxxxx dbname=db"},
		{"host=h password='s3 cr\\'et' dbname=db", "host=h password=xxxxx dbname=db"},
		{"postgres://u:s3cret@h:bad/db", "postgres://u:xxxxx@h:bad/db"},
		{"postgres://u:s3c/ret@h/db", "postgres://u:xxxxx@h/db"},
		{"postgres://u:s3c@ret@h/db", "postgres://u:xxxxx@h/db"},
		{"postgres://u:s3c?ret@h/db", "postgres://u:xxxxx@h/db"},
		{"https://elastic:s3cret@es.example:9243", "https://elastic:xxxxx@es.example:9243"},
		{"http://127.0.0.1:9200", "http://127.0.0.1:9200"},
		{"not a url", "not a url"},
	}
	for _, tt := range tests {
		if got := RedactURL(tt.give); got != tt.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tt.give, got, tt.want)
		}
	}
}

func TestSecretFromFile(t *testing.T) {
	t.Parallel()
	f := writeFile(t, "pw", "from-file\r\n")
	tests := []struct {
		name    string
		give    secretSetting
		want    string
		wantErr []string
	}{
		{"value", secretSetting{value: NewSecret("v"), valueFlag: "x-password", fileFlag: "x-password-file"}, "v", nil},
		{"file, newline trimmed", secretSetting{file: f, valueFlag: "x-password", fileFlag: "x-password-file"}, "from-file", nil},
		{"both", secretSetting{value: NewSecret("v"), file: f, valueFlag: "x-password", fileFlag: "x-password-file"}, "", []string{"--x-password and --x-password-file are both set"}},
		{"unreadable", secretSetting{file: "/nonexistent/pw", valueFlag: "x-password", fileFlag: "x-password-file"}, "", []string{"--x-password-file /nonexistent/pw: cannot read it", "no such file"}},
	}
	for _, tt := range tests {
		got, err := tt.give.resolve()
		wantErr(t, tt.name, err, tt.wantErr)
		if got.Reveal() != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got.Reveal(), tt.want)
		}
	}
}

func TestInsecureSkipVerifyWarns(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	if _, err := (Kafka{Brokers: []string{"127.0.0.1:1"}, TLS: TLS{InsecureSkipVerify: true}}).ClientOpts(log); err != nil {
		t.Fatal(err)
	}
	if out := buf.String(); !strings.Contains(out, "level=WARN") || !strings.Contains(out, "service=kafka") || !strings.Contains(out, "--kafka-tls-insecure-skip-verify") {
		t.Errorf("log %q: want a WARN naming kafka and --kafka-tls-insecure-skip-verify", out)
	}
	buf.Reset()
	if _, err := (Kafka{Brokers: []string{"127.0.0.1:1"}, TLS: TLS{Enabled: true}}).ClientOpts(log); err != nil || buf.Len() != 0 {
		t.Errorf("verified TLS logged %q (err %v), want nothing", buf.String(), err)
	}
}
