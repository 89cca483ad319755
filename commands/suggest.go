package commands

import (
	"strings"
	"unicode/utf8"
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
		d := editDistance(word, c)
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

// editDistance is the optimal-string-alignment distance between a and b:
// insertions, deletions, substitutions and transpositions of adjacent runes.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}
