package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"unicode/utf8"
)

// validate checks the parts of a manifest IoT Hub and the edge runtime cannot
// do without. It does not check module settings: the edge agent reports
// those itself, per module, once the device runs.
func validate(b []byte) error {
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		return syntaxError(b, err)
	}
	root, ok := doc.(map[string]any)
	if !ok {
		return fmt.Errorf("the manifest must be a JSON object, not %s", kind(doc))
	}
	modules, path, err := object(root, "", "modulesContent")
	if err != nil {
		return err
	}
	for _, twin := range []string{"$edgeAgent", "$edgeHub"} {
		if err := checkSystemTwin(modules, path, twin); err != nil {
			return err
		}
	}
	return nil
}

func checkSystemTwin(modules map[string]any, path, twin string) error {
	m, path, err := object(modules, path, twin)
	if err != nil {
		return err
	}
	desired, path, err := object(m, path, "properties.desired")
	if err != nil {
		return err
	}
	v, ok := desired["schemaVersion"]
	path = keyPath(path, "schemaVersion")
	if !ok {
		return fmt.Errorf("%s is missing", path)
	}
	if _, ok := v.(string); !ok {
		return fmt.Errorf("%s must be a string such as \"1.1\", not %s", path, kind(v))
	}
	return nil
}

// object returns obj[key] as an object, with its path for later messages.
func object(obj map[string]any, path, key string) (map[string]any, string, error) {
	path = keyPath(path, key)
	v, ok := obj[key]
	if !ok {
		return nil, path, fmt.Errorf("%s is missing", path)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, path, fmt.Errorf("%s must be a JSON object, not %s", path, kind(v))
	}
	return m, path, nil
}

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// keyPath writes paths the way jq does, so an operator can paste them:
// .modulesContent["$edgeHub"]["properties.desired"].schemaVersion
func keyPath(path, key string) string {
	if identifier.MatchString(key) {
		return path + "." + key
	}
	if path == "" {
		path = "."
	}
	return path + "[" + strconv.Quote(key) + "]"
}

func kind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case float64:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "an array"
	default:
		return "an object"
	}
}

// syntaxError adds the line and column, which encoding/json leaves out. They
// refer to the rendered text; that matches the file's lines unless template
// actions add or trim newlines.
func syntaxError(b []byte, err error) error {
	var se *json.SyntaxError
	if !errors.As(err, &se) {
		return fmt.Errorf("invalid JSON: %w", err)
	}
	line, col := position(b, se.Offset)
	return fmt.Errorf("invalid JSON at line %d, column %d (of the rendered template): %w", line, col, err)
}

// position converts a SyntaxError offset (one past the offending byte) to a
// 1-based line and column in runes.
func position(b []byte, offset int64) (line, col int) {
	at := int(min(max(offset-1, 0), int64(len(b))))
	before := b[:at]
	lineStart := bytes.LastIndexByte(before, '\n') + 1
	return bytes.Count(before, []byte("\n")) + 1, utf8.RuneCount(before[lineStart:]) + 1
}
