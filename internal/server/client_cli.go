package server

import "errors"

// Host is the server's host[:port], for messages.
func (c *Client) Host() string { return c.base.Host }

// URL is the server's base URL.
func (c *Client) URL() string { return c.base.String() }

// IsStatus says whether err is the server's answer with that status.
func IsStatus(err error, status int) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == status
}
