// Package contract checks that the requests gatehouse's backend clients send
// are ones the services' official OpenAPI documents accept. Tests wrap a
// simulator's handler with a Checker; the documents are read from the shared
// reference folder beside the checkout and never copied into the project.
package contract

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi2"
	"github.com/getkin/kin-openapi/openapi2conv"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// ErrNoSpecs means the reference specs folder is not beside this checkout.
var ErrNoSpecs = errors.New("reference specs not found (expected ../shared/reference/specs beside the checkout)")

// SpecsDir finds ../shared/reference/specs relative to the module root.
func SpecsDir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			specs := filepath.Join(dir, "..", "shared", "reference", "specs")
			if _, err := os.Stat(specs); err != nil {
				return "", ErrNoSpecs
			}
			return specs, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", ErrNoSpecs
		}
		dir = parent
	}
}

// LoadOpenAPI3 loads OpenAPI 3 documents (YAML or JSON, with relative $refs)
// from paths relative to the specs folder.
func LoadOpenAPI3(ctx context.Context, rel ...string) ([]*openapi3.T, error) {
	dir, err := SpecsDir()
	if err != nil {
		return nil, err
	}
	var docs []*openapi3.T
	for _, r := range rel {
		loader := openapi3.NewLoader()
		loader.IsExternalRefsAllowed = true
		loader.Context = ctx
		doc, err := loader.LoadFromFile(filepath.Join(dir, r))
		if err != nil {
			return nil, fmt.Errorf("contract: load %s: %w", r, err)
		}
		docs = append(docs, doc)
	}
	return docs, nil
}

// LoadSwagger2 loads a Swagger 2.0 JSON document and converts it to OpenAPI 3.
func LoadSwagger2(rel string) (*openapi3.T, error) {
	dir, err := SpecsDir()
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(filepath.Join(dir, rel))
	if err != nil {
		return nil, err
	}
	var v2 openapi2.T
	if err := v2.UnmarshalJSON(data); err != nil {
		return nil, fmt.Errorf("contract: parse %s: %w", rel, err)
	}
	doc, err := openapi2conv.ToV3(&v2)
	if err != nil {
		return nil, fmt.Errorf("contract: convert %s: %w", rel, err)
	}
	return doc, nil
}

// Checker validates every request it sees against a set of documents and
// remembers what it found, for the test to assert on.
type Checker struct {
	routers []routers.Router
	opts    *openapi3filter.Options

	mu       sync.Mutex
	checked  int
	problems []string
}

// NewChecker routes requests to operations of the given documents. Each
// document's servers are replaced by the bare origin so that full paths such
// as /api/management/v2/devauth/devices match whatever host the test uses.
func NewChecker(docs ...*openapi3.T) (*Checker, error) {
	c := &Checker{opts: &openapi3filter.Options{
		AuthenticationFunc: openapi3filter.NoopAuthenticationFunc,
		MultiError:         true,
	}}
	for _, doc := range docs {
		doc.Servers = openapi3.Servers{{URL: "/"}}
		r, err := legacy.NewRouter(doc)
		if err != nil {
			return nil, fmt.Errorf("contract: router: %w", err)
		}
		c.routers = append(c.routers, r)
	}
	return c, nil
}

// Check validates one request; its body is restored for the next reader.
func (c *Checker) Check(r *http.Request) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	probe := r.Clone(r.Context())
	probe.Body = io.NopCloser(bytes.NewReader(body))
	probe.URL = &url.URL{Path: r.URL.Path, RawQuery: r.URL.RawQuery}
	route, params, err := c.find(probe)
	if err != nil {
		return c.note(fmt.Errorf("%s %s: no operation in the spec: %w", r.Method, r.URL.Path, err))
	}
	in := &openapi3filter.RequestValidationInput{Request: probe, PathParams: params, Route: route, Options: c.opts}
	if err := openapi3filter.ValidateRequest(r.Context(), in); err != nil {
		return c.note(fmt.Errorf("%s %s: %w", r.Method, r.URL.Path, err))
	}
	return c.note(nil)
}

func (c *Checker) find(r *http.Request) (*routers.Route, map[string]string, error) {
	var firstErr error
	for _, rt := range c.routers {
		route, params, err := rt.FindRoute(r)
		if err == nil {
			return route, params, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, nil, firstErr
}

func (c *Checker) note(err error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.checked++
	if err != nil {
		c.problems = append(c.problems, err.Error())
	}
	return err
}

// Wrap returns a handler that checks each request, answers 400 with the
// problem when it fails (so the client under test sees it), and otherwise
// passes it on.
func (c *Checker) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := c.Check(r); err != nil {
			http.Error(w, "contract: "+err.Error(), http.StatusBadRequest)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Result reports how many requests were checked and what failed.
func (c *Checker) Result() (checked int, problems []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.checked, append([]string(nil), c.problems...)
}

// Summary is Result as one line per problem, for a test failure message.
func (c *Checker) Summary() string {
	n, p := c.Result()
	return fmt.Sprintf("%d requests checked, %d rejected:\n%s", n, len(p), strings.Join(p, "\n"))
}
