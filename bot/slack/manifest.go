package slack

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"text/template"
)

// DefaultManifestURL is the placeholder public URL of the HTTP-mode manifest
// kept in deploy/slack/manifest.yaml.
const DefaultManifestURL = "https://drbot.example.com"

//go:embed manifest.yaml.tmpl
var manifestTemplate string

var manifestTmpl = template.Must(template.New("manifest").Parse(manifestTemplate))

// ManifestOptions selects the Slack app manifest variant.
type ManifestOptions struct {
	// SocketMode renders the Socket Mode app: no request URLs, nothing
	// inbound to expose (SLACK_APP_TOKEN).
	SocketMode bool
	// URL is the bot's public base URL in HTTP mode (https://…, no query);
	// default DefaultManifestURL. Slack posts to URL/slack/commands,
	// URL/slack/interactions and URL/slack/events.
	URL string
}

// Manifest renders drbot's Slack app manifest (YAML). Its bot scopes are the
// ones the code calls, kept so by TestManifestScopesMatchTheCode.
func Manifest(o ManifestOptions) ([]byte, error) {
	if o.SocketMode && o.URL != "" {
		return nil, errors.New("slack manifest: --url is for HTTP mode; a Socket Mode app has no request URLs")
	}
	base := o.URL
	if base == "" {
		base = DefaultManifestURL
	}
	u, err := url.Parse(base)
	switch {
	case err != nil:
		return nil, fmt.Errorf("slack manifest: --url %q: %w", base, err)
	case u.Scheme != "https" || u.Host == "":
		return nil, fmt.Errorf("slack manifest: --url %q: Slack needs an absolute https:// URL", base)
	case u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("slack manifest: --url %q: give the base URL only, without query or fragment", base)
	}
	var b bytes.Buffer
	err = manifestTmpl.Execute(&b, struct {
		SocketMode bool
		URL        string
	}{o.SocketMode, strings.TrimRight(base, "/")})
	if err != nil {
		return nil, fmt.Errorf("slack manifest: %w", err)
	}
	return b.Bytes(), nil
}
