package bench

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// stepper runs the timed steps of a multi-step workload on one connection
// and keeps the first error; a step after an error does nothing.
type stepper struct {
	ctx   context.Context
	conn  *sql.Conn
	steps []Step
	err   error
}

// step times f as the step called name.
func (s *stepper) step(name string, f func() error) {
	if s.err != nil {
		return
	}
	start := time.Now()
	if err := f(); err != nil {
		s.err = fmt.Errorf("%s: %w", name, err)
		return
	}
	s.steps = append(s.steps, Step{Name: name, Seconds: time.Since(start).Seconds()})
}

// exec runs each statement in turn.
func (s *stepper) exec(stmts ...string) error {
	for _, q := range stmts {
		if _, err := s.conn.ExecContext(s.ctx, q); err != nil {
			return fmt.Errorf("%s: %w", firstWords(q), err)
		}
	}
	return nil
}

// tx runs f between BEGIN and COMMIT.
func (s *stepper) tx(f func() error) error {
	if err := s.exec("BEGIN"); err != nil {
		return err
	}
	if err := f(); err != nil {
		s.conn.ExecContext(s.ctx, "ROLLBACK")
		return err
	}
	return s.exec("COMMIT")
}

// repeat runs the statement q n times with the arguments args(i); rows a
// query returns are read to the end.
func (s *stepper) repeat(q string, n int, args func(i int) []any) error {
	stmt, err := s.conn.PrepareContext(s.ctx, q)
	if err != nil {
		return fmt.Errorf("%s: %w", firstWords(q), err)
	}
	defer stmt.Close()
	query := strings.HasPrefix(strings.ToUpper(strings.TrimSpace(q)), "SELECT")
	for i := range n {
		if !query {
			if _, err := stmt.ExecContext(s.ctx, args(i)...); err != nil {
				return fmt.Errorf("%s: %w", firstWords(q), err)
			}
			continue
		}
		rows, err := stmt.QueryContext(s.ctx, args(i)...)
		if err != nil {
			return fmt.Errorf("%s: %w", firstWords(q), err)
		}
		for rows.Next() {
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if err := rows.Err(); err != nil {
			return err
		}
	}
	return nil
}

// total is the sum of the steps' times.
func (s *stepper) total() time.Duration {
	var t float64
	for _, st := range s.steps {
		t += st.Seconds
	}
	return time.Duration(t * float64(time.Second))
}

func firstWords(q string) string {
	f := strings.Fields(q)
	return strings.Join(f[:min(len(f), 4)], " ")
}

// numberName spells n in English words, as text values of varied length
// and order (no two numbers share a name).
func numberName(n int) string {
	ones := []string{"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
		"eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"}
	tens := []string{"", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"}
	var words []string
	for _, u := range []struct {
		size int
		name string
	}{{1_000_000_000, "billion"}, {1_000_000, "million"}, {1000, "thousand"}, {100, "hundred"}} {
		if n >= u.size {
			words = append(words, numberName(n/u.size), u.name)
			n %= u.size
		}
	}
	switch {
	case n >= 20:
		w := tens[n/10]
		if n%10 != 0 {
			w += "-" + ones[n%10]
		}
		words = append(words, w)
	case n > 0 || len(words) == 0:
		words = append(words, ones[n])
	}
	return strings.Join(words, " ")
}
