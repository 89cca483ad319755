package incident_test

import (
	"context"
	"testing"

	"github.com/drbot-dev/drbot/internal/testenv"
	"github.com/drbot-dev/drbot/store/postgres"
)

func TestMain(m *testing.M) {
	testenv.SetTemplateSetup(func(ctx context.Context, url string) error {
		return postgres.Migrate(ctx, url)
	})
	testenv.Main(m)
}
