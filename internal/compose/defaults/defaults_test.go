package defaults

import "testing"

func TestKnownRestart(t *testing.T) {
	for p, want := range map[string]bool{
		"": true, "no": true, "always": true, "on-failure": true, "unless-stopped": true,
		"on-failure:3": false, "never": false, "Always": false,
	} {
		if got := KnownRestart(p); got != want {
			t.Errorf("KnownRestart(%q) = %v, want %v", p, got, want)
		}
	}
}
