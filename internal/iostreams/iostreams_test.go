package iostreams

import "testing"

func TestEnvFrom(t *testing.T) {
	tests := []struct {
		name    string
		environ []string
		want    Env
	}{
		{"empty", nil, Env{}},
		{"no color", []string{"NO_COLOR=1"}, Env{NoColor: true}},
		{"no color empty value is unset", []string{"NO_COLOR="}, Env{}},
		{"dumb", []string{"TERM=dumb"}, Env{Dumb: true}},
		{"xterm", []string{"TERM=xterm-256color"}, Env{}},
		{"ci", []string{"CI=true"}, Env{CI: true}},
		{"ci false", []string{"CI=false"}, Env{}},
		{"ci zero", []string{"CI=0"}, Env{}},
		{"last wins", []string{"NO_COLOR=1", "NO_COLOR="}, Env{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := EnvFrom(tt.environ); got != tt.want {
				t.Errorf("EnvFrom(%q) = %+v, want %+v", tt.environ, got, tt.want)
			}
		})
	}
}

func TestManners(t *testing.T) {
	tests := []struct {
		name                          string
		outTTY, errTTY                bool
		env                           Env
		color, colorStderr, animation bool
	}{
		{name: "pipes", color: false, colorStderr: false, animation: false},
		{name: "terminal", outTTY: true, errTTY: true, color: true, colorStderr: true, animation: true},
		{name: "stdout piped", errTTY: true, colorStderr: true, animation: true},
		{name: "NO_COLOR", outTTY: true, errTTY: true, env: Env{NoColor: true}, animation: true},
		{name: "TERM=dumb", outTTY: true, errTTY: true, env: Env{Dumb: true}},
		{name: "CI", outTTY: true, errTTY: true, env: Env{CI: true}, color: true, colorStderr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _, _, _ := Test()
			s.SetStdoutTTY(tt.outTTY)
			s.SetStderrTTY(tt.errTTY)
			s.SetEnv(tt.env)
			if got := s.ColorEnabled(); got != tt.color {
				t.Errorf("ColorEnabled() = %v, want %v", got, tt.color)
			}
			if got := s.ColorEnabledStderr(); got != tt.colorStderr {
				t.Errorf("ColorEnabledStderr() = %v, want %v", got, tt.colorStderr)
			}
			if got := s.CanAnimate(); got != tt.animation {
				t.Errorf("CanAnimate() = %v, want %v", got, tt.animation)
			}
		})
	}
}
