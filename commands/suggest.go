package commands

import (
	"strings"
	"unicode/utf8"

	"github.com/drbot-dev/drbot/internal/editdist"
)

// maxSuggestInput bounds the words closest compares, so that a 4 KB word costs
// nothing: nothing that long is close to a command or flag name.
const maxSuggestInput = 64

// closest returns the candidate nearest to word when it is close enough to be
// a likely typo (a small edit distance, or word is a prefix of exactly one
// candidate), else "".
func closest(word string, candidates []string) string {
	if word == "" || utf8.RuneCountInString(word) > maxSuggestInput {
		return ""
	}
	best, bestD := "", -1
	var prefixed []string
	for _, c := range candidates {
		if c == word {
			continue
		}
		if len(word) >= 3 && strings.HasPrefix(c, word) {
			prefixed = append(prefixed, c)
		}
		d := editdist.Distance(word, c)
		if d > maxDistance(c) {
			continue
		}
		if bestD < 0 || d < bestD || (d == bestD && c < best) {
			best, bestD = c, d
		}
	}
	if best == "" && len(prefixed) == 1 {
		return prefixed[0]
	}
	return best
}

// maxDistance is how many edits still count as a typo of a name.
func maxDistance(name string) int {
	n := utf8.RuneCountInString(name)
	switch {
	case n <= 3:
		return 1
	case n <= 8:
		return 2
	default:
		return 3
	}
}
