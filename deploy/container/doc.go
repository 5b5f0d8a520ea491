// Package container holds the tests of the server's container image, built
// from the repository's Dockerfile; it has no code of its own.
package container
