package schemas_test

import (
	"strings"
	"testing"

	"github.com/orderstream/orderstream/schemas"
)

func TestParseChannelFilter(t *testing.T) {
	t.Parallel()
	for give, want := range map[string]schemas.Channel{
		"web": schemas.ChannelWeb, "phone": schemas.ChannelPhone, "marketplace": schemas.ChannelMarketplace,
		"store": schemas.ChannelStore, "unknown": "",
	} {
		if got, err := schemas.ParseChannelFilter(give); err != nil || got != want {
			t.Errorf("ParseChannelFilter(%q) = %q, %v; want %q", give, got, err, want)
		}
	}
	for _, give := range []string{"", "Web", "none", "email", " web"} {
		_, err := schemas.ParseChannelFilter(give)
		if err == nil || !strings.Contains(err.Error(), `channel "`+give+`"`) {
			t.Errorf("ParseChannelFilter(%q) error = %v; want one naming it", give, err)
		}
	}
}
