package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Load reads, decodes and validates the file at path.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("loading config: %w", err)
	}
	c, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("loading config %s: %w", path, err)
	}
	return c, nil
}

// Parse decodes YAML over Default, strictly, and validates the result. An
// empty document gives the defaults.
func Parse(b []byte) (*Config, error) {
	c := Default()
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, fmt.Errorf("parsing YAML: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			return nil, typeErrors(&root, te)
		}
		return nil, fmt.Errorf("parsing YAML: %w", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("config holds more than one YAML document")
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// lineMessage splits the decoder's "line N: message" strings.
var lineMessage = regexp.MustCompile(`^line (\d+): (.*)$`)

// typeErrors turns the decoder's line-numbered errors into field-path
// errors, by finding which key stands on each line.
func typeErrors(root *yaml.Node, te *yaml.TypeError) error {
	var errs Errors
	for _, e := range te.Errors {
		m := lineMessage.FindStringSubmatch(e)
		if m == nil {
			errs = append(errs, FieldError{Path: "(document)", Msg: e})
			continue
		}
		line, _ := strconv.Atoi(m[1])
		msg := m[2]
		path := pathAtLine(root, line)
		if strings.HasPrefix(msg, "field ") && strings.Contains(msg, " not found in type ") {
			msg = "unknown key"
		}
		if path == "" {
			path = "line " + m[1]
		}
		errs = append(errs, FieldError{Path: path, Msg: msg})
	}
	return errs
}

// pathAtLine returns the YAML path of the deepest key or item on line.
func pathAtLine(n *yaml.Node, line int) string {
	var best string
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := k.Value
				if path != "" {
					p = path + "." + k.Value
				}
				if k.Line == line {
					best = p
				}
				walk(v, p)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				p := path + "[" + strconv.Itoa(i) + "]"
				if c.Line == line && best == "" {
					best = p
				}
				walk(c, p)
			}
		default:
			if n.Line == line && best == "" {
				best = path
			}
		}
	}
	walk(n, "")
	return best
}

// Expand replaces each ${NAME} in s with the environment variable NAME
// (empty when unset), so that a value held in a secret (a database URL, a
// token) need not be written in the config file. Only the braced form is
// expanded: a bare $ stays as it is, as passwords may hold one. The config
// keeps the unexpanded text, which /config shows.
func Expand(s string) string {
	if !strings.Contains(s, "${") {
		return s
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		b.WriteString(os.Getenv(s[i+2 : i+j]))
		s = s[i+j+1:]
	}
}
