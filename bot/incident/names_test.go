package incident_test

import (
	"context"
	"testing"

	"github.com/drbot-dev/drbot/bot/incident"
	"github.com/drbot-dev/drbot/bot/slack"
	"github.com/drbot-dev/drbot/internal/fakeslack"
)

// TestNameUsersThroughSlack: quoted user ids become the names Slack shows
// (users.info on the fake Slack); an id Slack does not know stays as it is,
// and no id replaces the start of a longer one.
func TestNameUsersThroughSlack(t *testing.T) {
	fs := fakeslack.New()
	t.Cleanup(fs.Close)
	fs.AddUser(fakeslack.User{ID: "UBOB", Name: "bob"})
	fs.AddUser(fakeslack.User{ID: "UBOBBY", Name: "bobby"})
	client, err := slack.NewClient(slack.Options{Token: fs.BotToken(), APIURL: fs.APIURL()})
	if err != nil {
		t.Fatal(err)
	}
	text := "restore-db lstm_pfd: approved by @UBOB; @UBOBBY, @UBOBX and @UNKNOWN1 watched; UBOB unquoted"
	got := incident.NameUsers(context.Background(), client, nil, text)(text)
	if want := "restore-db lstm_pfd: approved by @bob; @bobby, @UBOBX and @UNKNOWN1 watched; UBOB unquoted"; got != want {
		t.Errorf("renamed\n got %q\nwant %q", got, want)
	}
	if got := incident.NameUsers(context.Background(), nil, nil, text)(text); got != text {
		t.Errorf("without names %q", got)
	}
}
