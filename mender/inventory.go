package mender

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"gatehouse/rest"
)

const searchPath = "/api/management/v2/inventory/filters/search"

// searchPageSize is how many devices one search page asks for; a name is
// meant to match one device, so one page is the normal case.
const searchPageSize = 100

type filter struct {
	Scope     string `json:"scope"`
	Attribute string `json:"attribute"`
	Type      string `json:"type"`
	Value     any    `json:"value"`
}

type attribute struct {
	Scope     string `json:"scope"`
	Attribute string `json:"attribute"`
}

type searchParams struct {
	Page       int         `json:"page"`
	PerPage    int         `json:"per_page"`
	Filters    []filter    `json:"filters"`
	Attributes []attribute `json:"attributes,omitempty"`
}

// SetTag sets (upserts) one inventory tag. Mender's inventory answers 200
// for a device it does not hold (yet: it learns of devices asynchronously)
// and stores nothing, so only Tags can tell whether the tag is there. A 404
// still wraps gatehouse.ErrBackendNotFound; a 412 (the server's ETag
// check) is an error of its own.
func (c *Client) SetTag(ctx context.Context, deviceID, name, value string) error {
	if deviceID == "" {
		return errNoID
	}
	if name == "" {
		return errors.New("mender: a tag name is required")
	}
	_, err := c.do(ctx, rest.Request{
		Method: http.MethodPatch,
		Path:   "/api/management/v1/inventory/devices/" + url.PathEscape(deviceID) + "/tags",
		Body:   []map[string]string{{"name": name, "value": value}},
	})
	return notFound(err)
}

// Tags reads a device's inventory tags. Inventory learns of devices
// asynchronously, so a device deviceauth knows may still be a 404 here,
// returned wrapping gatehouse.ErrBackendNotFound.
func (c *Client) Tags(ctx context.Context, deviceID string) (map[string]string, error) {
	if deviceID == "" {
		return nil, errNoID
	}
	path := "/api/management/v1/inventory/devices/" + url.PathEscape(deviceID)
	resp, err := c.do(ctx, rest.Request{Method: http.MethodGet, Path: path})
	if err != nil {
		return nil, notFound(err)
	}
	var d struct {
		Attributes []struct {
			Name  string `json:"name"`
			Scope string `json:"scope"`
			Value any    `json:"value"`
		} `json:"attributes"`
	}
	if err := resp.JSON(&d); err != nil {
		return nil, fmt.Errorf("mender: GET %s: %w", path, err)
	}
	tags := map[string]string{}
	for _, a := range d.Attributes {
		if s, ok := a.Value.(string); ok && a.Scope == "tags" {
			tags[a.Name] = s
		}
	}
	return tags, nil
}

// FindByTag returns the ids of the devices whose tag name equals value.
func (c *Client) FindByTag(ctx context.Context, name, value string) ([]string, error) {
	if name == "" {
		return nil, errors.New("mender: a tag name is required")
	}
	f := filter{Scope: "tags", Attribute: name, Type: "$eq", Value: value}
	return c.search(ctx, []filter{f}, []attribute{{Scope: "tags", Attribute: name}})
}

// search returns the ids of every device matching filters, page by page.
// It asks only for attrs, since it reads nothing but ids, and stops when a
// page brings nothing new, should a server ignore paging.
func (c *Client) search(ctx context.Context, filters []filter, attrs []attribute) ([]string, error) {
	ids := []string{}
	seen := map[string]bool{}
	for page := 1; ; page++ {
		batch, total, err := c.searchPage(ctx, searchParams{Page: page, PerPage: searchPageSize, Filters: filters, Attributes: attrs})
		if err != nil {
			return nil, err
		}
		fresh := 0
		for _, id := range batch {
			if !seen[id] {
				seen[id] = true
				ids = append(ids, id)
				fresh++
			}
		}
		if fresh == 0 || len(batch) < searchPageSize || (total >= 0 && len(ids) >= total) {
			return ids, nil
		}
	}
}

// searchPage returns one page of ids and X-Total-Count (-1 if absent).
func (c *Client) searchPage(ctx context.Context, p searchParams) ([]string, int, error) {
	resp, err := c.do(ctx, rest.Request{Method: http.MethodPost, Path: searchPath, Body: p})
	if err != nil {
		return nil, 0, err
	}
	var devs []struct {
		ID string `json:"id"`
	}
	if err := resp.JSON(&devs); err != nil {
		return nil, 0, fmt.Errorf("mender: POST %s: %w", searchPath, err)
	}
	ids := make([]string, 0, len(devs))
	for _, d := range devs {
		if d.ID != "" {
			ids = append(ids, d.ID)
		}
	}
	total, err := strconv.Atoi(resp.Header.Get("X-Total-Count"))
	if err != nil {
		total = -1
	}
	return ids, total, nil
}
