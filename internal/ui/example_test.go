package ui_test

import (
	"fmt"
	"os"

	"github.com/ergomake/ergomake/internal/iostreams"
	"github.com/ergomake/ergomake/internal/ui"
)

// A command reports its phases on stderr; when stderr is not a terminal (as here) every event is
// a plain line. On a terminal the same calls draw a spinner instead.
func ExampleStatus() {
	ios, _, _, _ := iostreams.Test()
	ios.ErrOut = os.Stdout // to show the output here
	st := ui.NewStatus(ios, ui.StatusOptions{NoTimestamps: true})
	defer st.Stop()

	st.Start("Waiting for services")
	st.Update("0/2 ready")
	st.Logf("%s is healthy", "db")
	st.Update("1/2 ready")
	st.Warnf("web has no healthcheck: ready means started")
	st.End(true)
	// Output:
	// • Waiting for services ...
	//   0/2 ready
	// db is healthy
	//   1/2 ready
	// warning: web has no healthcheck: ready means started
	// ✓ Waiting for services
}

// Tables go to stdout: aligned columns for scripts, a bordered table on a terminal.
func ExampleTable() {
	ios, _, _, _ := iostreams.Test()
	ios.Out = os.Stdout
	t := ui.NewTable(ios, "SERVICE", "STATE", "PORTS")
	t.AddRow("web", "healthy", "localhost:8080->80")
	t.AddRow("db", "running")
	if err := t.Print(); err != nil {
		fmt.Println(err)
	}
	// Output:
	// SERVICE   STATE     PORTS
	// web       healthy   localhost:8080->80
	// db        running
}
