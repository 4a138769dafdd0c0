package workflow

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// digdag-core ConfigEvalEngineTest.testMoment, testMomentTimeZone and
// testMomentDstTimeZone (eval/moment.dig and its three _expected files).
func TestMomentLikeDigdag(t *testing.T) {
	exprs := []string{
		"${moment(session_time).format()}",
		"${moment(session_time).add(1, 'days').format()}",
		"${moment(session_time).add(-1, 'days').format()}",
		"${moment(session_time).add(1, 'hours').format()}",
		"${moment(session_time).add(-1, 'hours').format()}",
		"${moment(session_time).utc().format()}",
		`${moment(session_time).format("YYYY-MM-DD HH:mm:ss Z")}`,
		`${moment(session_time).format("LLL")}`,
	}
	for zone, want := range map[string][]string{
		"UTC": {"2016-03-13T10:00:00+00:00", "2016-03-14T10:00:00+00:00", "2016-03-12T10:00:00+00:00",
			"2016-03-13T11:00:00+00:00", "2016-03-13T09:00:00+00:00", "2016-03-13T10:00:00Z",
			"2016-03-13 10:00:00 +00:00", "March 13, 2016 10:00 AM"},
		"Asia/Tokyo": {"2016-03-13T19:00:00+09:00", "2016-03-14T19:00:00+09:00", "2016-03-12T19:00:00+09:00",
			"2016-03-13T20:00:00+09:00", "2016-03-13T18:00:00+09:00", "2016-03-13T10:00:00Z",
			"2016-03-13 19:00:00 +09:00", "March 13, 2016 7:00 PM"},
		"America/Los_Angeles": {"2016-03-13T03:00:00-07:00", "2016-03-14T03:00:00-07:00", "2016-03-12T03:00:00-08:00",
			"2016-03-13T04:00:00-07:00", "2016-03-13T01:00:00-08:00", "2016-03-13T10:00:00Z",
			"2016-03-13 03:00:00 -07:00", "March 13, 2016 3:00 AM"},
	} {
		scope := Scope{"session_time": "2016-03-13T10:00:00Z", "timezone": zone}
		for i, e := range exprs {
			assert.Equal(t, want[i], render(t, e, scope), "%s %s", zone, e)
		}
	}
}

// Values worked out by hand (and with moment.js 2.21's documented token
// table) for 2016-02-29T23:04:05.678 in Tokyo, a Monday.
func TestMomentFormatTokens(t *testing.T) {
	scope := Scope{"t": "2016-02-29T23:04:05.678+09:00", "timezone": "Asia/Tokyo"}
	for f, want := range map[string]string{
		"YYYY YY M MM MMM MMMM Mo": "2016 16 2 02 Feb February 2nd",
		"D DD Do DDD DDDD":         "29 29 29th 60 060",
		"d dd ddd dddd E":          "1 Mo Mon Monday 1",
		"H HH h hh k A a":          "23 23 11 11 24 PM pm",
		"m mm s ss S SS SSS":       "4 04 5 05 6 67 678",
		"Z ZZ":                     "+09:00 +0900",
		"X x":                      "1456754645 1456754645678",
		"Q Qo W WW w GGGG gggg":    "1 1st 9 09 10 2016 2016",
		"[today is] dddd, [Z]":     "today is Monday, Z",
		"L LL LTS l ll":            "02/29/2016 February 29, 2016 11:04:05 PM 2/29/2016 Feb 29, 2016",
		"LLLL":                     "Monday, February 29, 2016 11:04 PM",
		"YYYYMMDD-HHmmss":          "20160229-230405",
	} {
		assert.Equal(t, want, render(t, "${moment(t).format('"+f+"')}", scope), f)
	}
}

func TestMomentArithmeticAndComparisons(t *testing.T) {
	scope := Scope{"t": "2016-01-31T12:30:00Z", "timezone": "UTC", "later": "2016-03-01T00:00:00Z"}
	for e, want := range map[string]string{
		"moment(t).add(1, 'months').format('YYYY-MM-DD')":                 "2016-02-29", // clamped to the month's end
		"moment(t).add(1, 'years').subtract(1, 'M').format('YYYY-MM-DD')": "2016-12-31",
		"moment(t).add(2, 'w').format('YYYY-MM-DD')":                      "2016-02-14",
		"moment(t).add({days: 1, hours: 12}).format()":                    "2016-02-02T00:30:00+00:00",
		"moment(t).startOf('month').format()":                             "2016-01-01T00:00:00+00:00",
		"moment(t).endOf('month').format('YYYY-MM-DD HH:mm:ss.SSS')":      "2016-01-31 23:59:59.999",
		"moment(t).startOf('week').format('YYYY-MM-DD ddd')":              "2016-01-31 Sun",
		"moment(t).startOf('isoWeek').format('YYYY-MM-DD ddd')":           "2016-01-25 Mon",
		"moment(t).startOf('year').format('X')":                           "1451606400",
		"moment(t).startOf('quarter').format('YYYY-MM-DD')":               "2016-01-01",
		"moment(t).startOf('hour').format('HH:mm')":                       "12:00",
		"moment(t).unix()":                                                    "1454243400",
		"moment(t).valueOf()":                                                 "1454243400000",
		"moment(t).isBefore(later)":                                           "true",
		"moment(t).isAfter(moment(later))":                                    "false",
		"moment(t).isSame('2016-01-31', 'day')":                               "true",
		"moment(t).isSame(later, 'year')":                                     "true",
		"moment(t) < moment(later)":                                           "true",
		"moment(later).diff(moment(t), 'days')":                               "29",
		"moment(later).diff(t, 'months')":                                     "1",
		"moment(t).tz('Asia/Tokyo').format()":                                 "2016-01-31T21:30:00+09:00",
		"moment(t).utcOffset('-05:00').format('HH:mm Z')":                     "07:30 -05:00",
		"moment(t).utcOffset()":                                               "0",
		"moment.unix(0).utc().format()":                                       "1970-01-01T00:00:00Z",
		"moment.utc('2016-03-13 10:00:00').format()":                          "2016-03-13T10:00:00Z",
		"moment('20160313', 'YYYYMMDD').format('YYYY-MM-DD')":                 "2016-03-13",
		"moment('13/03/2016 7:05 pm', 'DD/MM/YYYY h:mm a').format('HH:mm')":   "19:05",
		"moment('nope').format()":                                             "Invalid date",
		"moment('nope').isValid()":                                            "false",
		"JSON.stringify({t: moment(t)})":                                      `{"t":"2016-01-31T12:30:00.000Z"}`,
		"moment(t)":                                                           `"2016-01-31T12:30:00.000Z"`, // digdag renders a moment as JSON
		"moment(t).year() + '/' + moment(t).month() + '/' + moment(t).date()": "2016/0/31",
		"moment(t).month(1).format('YYYY-MM-DD')":                             "2016-02-29",
		"moment(t).daysInMonth()":                                             "31",
	} {
		assert.Equal(t, want, render(t, "${"+e+"}", scope), e)
	}
}

// moment() is now, in the workflow's zone (digdag runs the templates with
// the JavaScript zone set to the timezone param).
func TestMomentNow(t *testing.T) {
	before := time.Now().Unix()
	v := render(t, "${moment().unix()}", Scope{"timezone": "Asia/Tokyo"})
	n, err := strconv.ParseInt(v, 10, 64)
	require.NoError(t, err)
	assert.InDelta(t, before, n, 2)
	assert.Equal(t, "+09:00", render(t, "${moment().format('Z')}", Scope{"timezone": "Asia/Tokyo"}))
}
