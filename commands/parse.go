package commands

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxInputBytes is the longest command text Dispatch and Parse accept.
const MaxInputBytes = 4096

// Quote characters. Slack (and the operating systems people type on) turn
// straight quotes into typographic ones, so these count as quotes too:
//
//   - double: " “ ” „ — any of them opens a quoted string and any of them closes it;
//   - single: ' and ‘ open a quoted string, closed by ' or ’. A ’ outside quotes
//     is an apostrophe (Slack turns don't into don’t), so it never opens one.
func isDoubleQuote(r rune) bool {
	return r == '"' || r == '“' || r == '”' || r == '„'
}

func opensSingleQuote(r rune) bool { return r == '\'' || r == '‘' }

func closesSingleQuote(r rune) bool { return r == '\'' || r == '’' }

// Parse splits command text into words with shell-like rules:
//
//   - words are separated by white space (including non-breaking spaces);
//   - "double quotes" keep spaces; inside them a backslash escapes a double
//     quote or a backslash and is otherwise literal;
//   - 'single quotes' keep everything literally up to the closing quote;
//   - outside quotes a backslash escapes the next character (a trailing
//     backslash is kept literally);
//   - quoted parts join adjacent text into one word (--reason="a b"), and ""
//     is an empty word.
//
// Errors are *Refusal values: an unterminated quote, invalid UTF-8 or text
// longer than MaxInputBytes.
func Parse(text string) ([]string, error) {
	if len(text) > MaxInputBytes {
		return nil, Refusef("command is too long (%d bytes; the limit is %d)", len(text), MaxInputBytes)
	}
	if !utf8.ValidString(text) {
		return nil, Refusef("command text is not valid UTF-8")
	}
	var (
		words   []string
		cur     strings.Builder
		inWord  bool // cur holds a word, possibly empty ("")
		quote   rune // 0, '"' or '\'' while inside quotes
		opener  rune // the quote character as typed, for messages
		quoteAt int  // 1-based character position of the open quote
		pos     int  // 1-based character position of r
	)
	runes := []rune(text)
	for i := 0; i < len(runes); i++ {
		r := runes[i]
		pos = i + 1
		switch quote {
		case '"':
			switch {
			case r == '\\' && i+1 < len(runes) && (isDoubleQuote(runes[i+1]) || runes[i+1] == '\\'):
				i++
				cur.WriteRune(runes[i])
			case isDoubleQuote(r):
				quote = 0
			default:
				cur.WriteRune(r)
			}
			continue
		case '\'':
			if closesSingleQuote(r) {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
			continue
		}
		switch {
		case unicode.IsSpace(r):
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case r == '\\':
			inWord = true
			if i+1 < len(runes) {
				i++
				cur.WriteRune(runes[i])
			} else {
				cur.WriteRune(r)
			}
		case isDoubleQuote(r):
			inWord, quote, opener, quoteAt = true, '"', r, pos
		case opensSingleQuote(r):
			inWord, quote, opener, quoteAt = true, '\'', r, pos
		default:
			inWord = true
			cur.WriteRune(r)
		}
	}
	if quote != 0 {
		return nil, Refusef("unterminated quote: the %c at character %d is never closed", opener, quoteAt)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}
