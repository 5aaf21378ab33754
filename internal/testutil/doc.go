// Package testutil holds helpers shared by tests that start real servers.
package testutil
