package transform

import (
	"encoding/binary"
	"math/bits"
	"strconv"
)

// maxScanDepth is the deepest nesting of arrays and objects the Scanner
// accepts. It equals encoding/json's limit, so that a body the Scanner passes
// is one that encoding/json (and code built on it) will also accept.
const maxScanDepth = 10000

// scanState says what the Scanner expects next. The zero value is the state
// at the start of a stream, so a zero Scanner is ready to use.
type scanState uint8

const (
	stValue        scanState = iota // a value (start, after ':' or after ',' in an array)
	stValueOrClose                  // a value or ']' (after '[')
	stKeyOrClose                    // a key string or '}' (after '{')
	stKey                           // a key string (after ',' in an object)
	stColon                         // ':' after a key
	stEnd                           // ',' or a closer after a value, or only space after the top-level value
	stString                        // inside a string
	stEscape                        // after '\' in a string
	stHex                           // inside the four hex digits of a \u escape
	stMinus                         // after a leading '-'
	stZero                          // after an integer part of "0"
	stInt                           // inside an integer part starting with 1-9
	stDot                           // after the decimal point
	stFrac                          // inside the fraction digits
	stExpMark                       // after 'e' or 'E'
	stExpSign                       // after the exponent's sign
	stExp                           // inside the exponent digits
	stLiteral                       // inside true, false or null
	stError                         // after a syntax error
)

// Scanner incrementally checks that a byte stream is exactly one JSON value
// (RFC 8259), optionally surrounded by whitespace, with the same verdict as
// encoding/json.Valid on the whole stream. It exists because the proxy
// streams bodies far too large to buffer (up to several GiB), while
// gjson.ValidBytes and json.Valid need the whole body in memory: the Scanner
// is fed the body piece by piece as it passes through, keeps only a bitset of
// open containers, and does not allocate once that bitset has grown.
//
// A zero Scanner is ready to use. A Scanner must not be used concurrently.
type Scanner struct {
	// stack holds one bit per open container, set for an object and clear
	// for an array; bit d describes the container at depth d+1.
	stack []uint64
	depth int       // number of open containers
	off   int64     // bytes consumed by earlier Writes
	err   error     // first syntax error, returned by every later call
	lit   string    // the literal being matched in stLiteral
	aux   int       // position in lit, or hex digits left in stHex
	state scanState // what is expected next
	key   bool      // the string being scanned is an object key
}

// scanError is a syntax error with the stream offset of the offending byte.
// Its message matches encoding/json's SyntaxError so that logs read the same
// whichever check rejected a body.
type scanError struct {
	msg    string
	offset int64
}

// Error describes the syntax error and where in the stream it occurred.
func (e *scanError) Error() string {
	return e.msg + " at offset " + strconv.FormatInt(e.offset, 10)
}

// Reset readies the Scanner for a new stream, keeping its allocated stack.
func (s *Scanner) Reset() {
	*s = Scanner{stack: s.stack}
}

// Write feeds the next bytes of the stream. It returns len(p), nil while the
// stream can still be a valid JSON text, and an error (n = offset of the
// offending byte within p) at the first byte that cannot continue one,
// including any non-whitespace after the complete value. After an error every
// later Write returns an error too.
func (s *Scanner) Write(p []byte) (n int, err error) {
	if s.err != nil {
		return 0, s.err
	}
	st, depth, key := s.state, s.depth, s.key
	i := 0
loop:
	for i < len(p) {
		switch st {
		case stValue, stValueOrClose:
			i = skipSpace(p, i)
			if i == len(p) {
				break loop
			}
			c := p[i]
			switch {
			case c == '"':
				key = false
				st = stString
			case c-'1' < 9:
				st = stInt
			case c == '0':
				st = stZero
			case c == '-':
				st = stMinus
			case c == '{' || c == '[':
				if depth == maxScanDepth {
					return s.fail(p, i, "exceeded max depth")
				}
				w := depth >> 6
				if w == len(s.stack) {
					s.stack = append(s.stack, 0)
				}
				if c == '{' {
					s.stack[w] |= 1 << (depth & 63)
					st = stKeyOrClose
				} else {
					s.stack[w] &^= 1 << (depth & 63)
					st = stValueOrClose
				}
				depth++
			case c == 't':
				if len(p)-i >= 4 && string(p[i:i+4]) == "true" {
					i += 4
					st = stEnd
					continue
				}
				st, s.lit, s.aux = stLiteral, "true", 1
			case c == 'f':
				if len(p)-i >= 5 && string(p[i:i+5]) == "false" {
					i += 5
					st = stEnd
					continue
				}
				st, s.lit, s.aux = stLiteral, "false", 1
			case c == 'n':
				if len(p)-i >= 4 && string(p[i:i+4]) == "null" {
					i += 4
					st = stEnd
					continue
				}
				st, s.lit, s.aux = stLiteral, "null", 1
			case c == ']' && st == stValueOrClose:
				depth--
				st = stEnd
			default:
				return s.fail(p, i, "looking for beginning of value")
			}
			i++

		case stString:
			i = skipString(p, i)
			if i == len(p) {
				break loop
			}
			switch p[i] {
			case '"':
				if !key {
					st = stEnd
				} else if i+1 < len(p) && p[i+1] == ':' {
					// Compact "key":value; skip the stColon round trip.
					i++
					st = stValue
				} else {
					st = stColon
				}
			case '\\':
				st = stEscape
			default:
				return s.fail(p, i, "in string literal")
			}
			i++

		case stColon:
			i = skipSpace(p, i)
			if i == len(p) {
				break loop
			}
			if p[i] != ':' {
				return s.fail(p, i, "after object key")
			}
			st = stValue
			i++

		case stEnd:
			i = skipSpace(p, i)
			if i == len(p) {
				break loop
			}
			if depth == 0 {
				return s.fail(p, i, "after top-level value")
			}
			c := p[i]
			top := depth - 1
			if s.stack[top>>6]&(1<<(top&63)) != 0 {
				switch c {
				case ',':
					if i+1 < len(p) && p[i+1] == '"' {
						// Compact ,"key"; skip the stKey round trip.
						i++
						key = true
						st = stString
					} else {
						st = stKey
					}
				case '}':
					depth--
				default:
					return s.fail(p, i, "after object key:value pair")
				}
			} else {
				switch c {
				case ',':
					st = stValue
				case ']':
					depth--
				default:
					return s.fail(p, i, "after array element")
				}
			}
			i++

		case stKeyOrClose, stKey:
			i = skipSpace(p, i)
			if i == len(p) {
				break loop
			}
			switch c := p[i]; {
			case c == '"':
				key = true
				st = stString
			case c == '}' && st == stKeyOrClose:
				depth--
				st = stEnd
			default:
				return s.fail(p, i, "looking for beginning of object key string")
			}
			i++

		case stInt, stFrac, stExp:
			for i < len(p) && p[i]-'0' < 10 {
				i++
			}
			if i == len(p) {
				break loop
			}
			switch c := p[i]; {
			case c == '.' && st == stInt:
				st = stDot
			case (c == 'e' || c == 'E') && st != stExp:
				st = stExpMark
			default:
				st = stEnd // the number ended before p[i]
				continue
			}
			i++

		case stZero:
			switch p[i] {
			case '.':
				st = stDot
			case 'e', 'E':
				st = stExpMark
			default:
				st = stEnd // the number ended before p[i]
				continue
			}
			i++

		case stMinus:
			switch c := p[i]; {
			case c == '0':
				st = stZero
			case c-'1' < 9:
				st = stInt
			default:
				return s.fail(p, i, "in numeric literal")
			}
			i++

		case stDot:
			if p[i]-'0' >= 10 {
				return s.fail(p, i, "after decimal point in numeric literal")
			}
			st = stFrac
			i++

		case stExpMark, stExpSign:
			switch c := p[i]; {
			case c-'0' < 10:
				st = stExp
			case (c == '+' || c == '-') && st == stExpMark:
				st = stExpSign
			default:
				return s.fail(p, i, "in exponent of numeric literal")
			}
			i++

		case stEscape:
			switch p[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				st = stString
			case 'u':
				st, s.aux = stHex, 4
			default:
				return s.fail(p, i, "in string escape code")
			}
			i++

		case stHex:
			c := p[i]
			if c-'0' >= 10 && (c|0x20)-'a' >= 6 {
				return s.fail(p, i, `in \u hexadecimal character escape`)
			}
			s.aux--
			if s.aux == 0 {
				st = stString
			}
			i++

		case stLiteral:
			want := s.lit[s.aux]
			if p[i] != want {
				return s.fail(p, i, "in literal "+s.lit+" (expecting "+quoteByte(want)+")")
			}
			s.aux++
			if s.aux == len(s.lit) {
				st = stEnd
			}
			i++

		default: // stError is unreachable here: s.err is set with it.
			return s.fail(p, i, "in corrupted scanner state")
		}
	}
	s.state, s.depth, s.key = st, depth, key
	s.off += int64(len(p))
	return len(p), nil
}

// Close reports whether the bytes fed so far form exactly one complete JSON
// value: nil, or an error (incomplete value, empty input, earlier syntax
// error). It does not change the Scanner, so it may be called more than once.
func (s *Scanner) Close() error {
	if s.err != nil {
		return s.err
	}
	switch s.state {
	case stEnd, stZero, stInt, stFrac, stExp:
		// A number ends at the end of input, as in encoding/json; inside
		// a container the depth check below still rejects it.
		if s.depth == 0 {
			return nil
		}
	case stValue:
		if s.depth == 0 {
			return &scanError{msg: "unexpected end of JSON input: no value", offset: s.off}
		}
	}
	return &scanError{msg: "unexpected end of JSON input", offset: s.off}
}

// fail records the syntax error at p[i] so that every later call reports it,
// and returns it in Write's form.
func (s *Scanner) fail(p []byte, i int, context string) (int, error) {
	s.err = &scanError{
		msg:    "invalid character " + quoteByte(p[i]) + " " + context,
		offset: s.off + int64(i),
	}
	s.state = stError
	return i, s.err
}

// quoteByte formats c as encoding/json's quoteChar does, so that messages
// match its SyntaxError text.
func quoteByte(c byte) string {
	switch c {
	case '\'':
		return `'\''`
	case '"':
		return `'"'`
	}
	q := strconv.Quote(string(rune(c)))
	return "'" + q[1:len(q)-1] + "'"
}

// spaceMask has bit c set for each JSON whitespace byte c.
const spaceMask = 1<<' ' | 1<<'\t' | 1<<'\n' | 1<<'\r'

// skipSpace returns the index of the first byte at or after i that is not
// JSON whitespace, or len(p).
func skipSpace(p []byte, i int) int {
	for i < len(p) && p[i] <= ' ' && spaceMask&(uint64(1)<<p[i]) != 0 {
		i++
	}
	return i
}

// Byte-lane constants for SWAR (SIMD within a register) string scanning.
const (
	lanes01 = 0x0101010101010101
	lanes80 = 0x8080808080808080
)

// skipString returns the index of the first byte at or after i that ends or
// interrupts a string's plain run ('"', '\\' or a control byte < 0x20), or
// len(p). It tests eight bytes per step, because string contents are most of
// a typical body and a per-byte state machine would dominate the scan.
func skipString(p []byte, i int) int {
	for ; len(p)-i >= 8; i += 8 {
		x := binary.LittleEndian.Uint64(p[i:])
		// A lane's high bit is set in m if the byte is < 0x20, '"' or
		// '\\'. Borrows can only set bits above the lowest truly
		// matching lane, so the lowest set bit is exact.
		m := ((x - lanes01*0x20) | ((x ^ lanes01*'"') - lanes01) | ((x ^ lanes01*'\\') - lanes01)) &^ x & lanes80
		if m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
	}
	for ; i < len(p); i++ {
		if c := p[i]; c == '"' || c == '\\' || c < 0x20 {
			return i
		}
	}
	return i
}
