package coding

import (
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestConfigYAML(t *testing.T) {
	t.Parallel()
	var c struct {
		Coding Options `yaml:"coding"`
	}
	src := `
coding:
  default_alphabet: latin1
  packed: true
  use_latin1: true
  concat: udh16
  max_segments: 6
`
	if err := yaml.Unmarshal([]byte(src), &c); err != nil {
		t.Fatal(err)
	}
	want := Options{DefaultAlphabet: Latin1, Packed: true, UseLatin1: true, Concat: ConcatUDH16, MaxSegments: 6}
	if c.Coding != want {
		t.Fatalf("options %+v, want %+v", c.Coding, want)
	}
	if err := c.Coding.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal([]byte("coding: {concat: sms}"), &c); err == nil {
		t.Fatal("unknown concat method accepted")
	}
	out, err := yaml.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	var back Options
	if err := yaml.Unmarshal(out, &back); err != nil || back != want {
		t.Fatalf("yaml round trip: %s -> %+v, %v", out, back, err)
	}
}
