// Package termtest helps tests drive terminal output for real: a pseudo-terminal to write to (the
// spinner library animates only on a real terminal) and a small screen that replays what was
// written, cursor movements and erasures included, to check what a user would see.
package termtest

import (
	"strconv"
	"strings"
)

// Screen replays terminal output (as PTY.Output returns it: "\n" starts a new line) and returns the lines left on screen, without trailing blanks
// and without empty lines at the end. It understands printable text, "\r", "\n", and the CSI
// sequences ergomake and its spinner write: K (erase in line), J (erase below), A (up), B (down),
// F (up, to column 0); colours and cursor visibility are ignored. Lines do not wrap.
func Screen(out string) []string {
	var lines [][]rune
	row, col := 0, 0
	at := func(r int) []rune {
		for len(lines) <= r {
			lines = append(lines, nil)
		}
		return lines[r]
	}
	rs := []rune(out)
	for i := 0; i < len(rs); i++ {
		c := rs[i]
		switch {
		case c == '\r':
			col = 0
		case c == '\n': // as Output returns it: the terminal's "\r\n"
			row, col = row+1, 0
		case c == 0x1b && i+1 < len(rs) && rs[i+1] == '[':
			j := i + 2
			for j < len(rs) && (rs[j] >= '0' && rs[j] <= '9' || rs[j] == ';' || rs[j] == '?') {
				j++
			}
			if j >= len(rs) {
				i = j
				break
			}
			param := string(rs[i+2 : j])
			n, err := strconv.Atoi(param)
			if err != nil || n < 1 {
				n = 1
			}
			switch rs[j] {
			case 'K':
				if l := at(row); col < len(l) {
					lines[row] = l[:col]
				}
			case 'J':
				if l := at(row); col < len(l) {
					lines[row] = l[:col]
				}
				if row+1 < len(lines) {
					lines = lines[:row+1]
				}
			case 'A':
				row = max(0, row-n)
			case 'B':
				row += n
			case 'F':
				row, col = max(0, row-n), 0
			}
			i = j
		default:
			l := at(row)
			for len(l) < col {
				l = append(l, ' ')
			}
			if col < len(l) {
				l[col] = c
			} else {
				l = append(l, c)
			}
			lines[row] = l
			col++
		}
	}
	var screen []string
	for _, l := range lines {
		screen = append(screen, strings.TrimRight(string(l), " "))
	}
	for len(screen) > 0 && screen[len(screen)-1] == "" {
		screen = screen[:len(screen)-1]
	}
	return screen
}
