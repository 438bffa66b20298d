package compose

import (
	"io"
	"sync"

	"github.com/sirupsen/logrus"
)

// logrusMu serialises loads that capture compose-go's warnings: logrus' standard logger is global.
var logrusMu sync.Mutex

type warnHook struct{ warn func(string) }

func (warnHook) Levels() []logrus.Level { return []logrus.Level{logrus.WarnLevel, logrus.ErrorLevel} }

func (h warnHook) Fire(e *logrus.Entry) error {
	h.warn(e.Message)
	return nil
}

// captureWarnings sends the standard logrus logger's warnings to warn until the returned function
// is called.
func captureWarnings(warn func(string)) func() {
	logrusMu.Lock()
	l := logrus.StandardLogger()
	hooks := logrus.LevelHooks{}
	hooks.Add(warnHook{warn: warn})
	old := l.ReplaceHooks(hooks)
	out := l.Out
	l.SetOutput(io.Discard)
	return func() {
		l.ReplaceHooks(old)
		l.SetOutput(out)
		logrusMu.Unlock()
	}
}
