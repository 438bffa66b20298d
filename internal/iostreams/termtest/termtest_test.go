package termtest

import (
	"reflect"
	"testing"
)

func TestScreen(t *testing.T) {
	tests := []struct {
		out  string
		want []string
	}{
		{"a\nb\n", []string{"a", "b"}},
		{"\r ⠋ one\r\x1b[K\r ⠙ two", []string{" ⠙ two"}},
		{"head\nbody 1\nbody 2\r\x1b[2A\x1b[Jlog\nhead\nbody", []string{"log", "head", "body"}},
		{"abc\rX", []string{"Xbc"}},
		{"x\n\x1b[32mgreen\x1b[0m\x1b[?25l", []string{"x", "green"}},
		{"1\n2\n3\x1b[F\x1b[K\x1b[F\x1b[K", []string{"", "", "3"}},
		{"1\n2\n3\x1b[2A\x1b[J", []string{"1"}},
		{"1\n2\n3\r\x1b[2A\x1b[J", nil},
	}
	for _, tt := range tests {
		if got := Screen(tt.out); len(got)+len(tt.want) > 0 && !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Screen(%q) = %q, want %q", tt.out, got, tt.want)
		}
	}
}
