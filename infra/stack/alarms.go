package stack

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssnssubscriptions"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// MetricsNamespace is where the functions publish their CloudWatch EMF
// metrics, with one dimension, Stage (the environment name).
const MetricsNamespace = "keyseal"

// Alarms are seed 004's alerts, on the metrics the functions emit, sent to
// one SNS topic (and an email subscription when the environment has one).
type Alarms struct {
	constructs.Construct
	Topic awssns.Topic
}

type alarmSpec struct {
	id, metric, statistic, description string
	period                             float64 // minutes
	periods                            float64
	threshold                          float64
}

var alarmSpecs = []alarmSpec{
	{"SealedTenants", "SealedTenants", "Maximum", "A tenant is sealed: keyseal cannot use its CMK (access revoked, key disabled or pending deletion, KMS unreachable). New sessions are refused.", 1, 1, 0},
	{"KMSLatency", "KMSLatency", "Average", "KMS verify latency above 200 ms for 5 minutes.", 1, 5, 200},
	{"KMSFailures", "KMSFailures", "Sum", "More than 10 KMS failures in 5 minutes.", 5, 1, 10},
	{"KeyDeliveryFailures", "KeyDeliveryFailures", "Sum", "A webhook delivery exhausted its retries (72 h) and went to the dead-letter queue.", 5, 1, 0},
	{"PollDispatchErrors", "PollDispatchErrors", "Sum", "The poller could not start a fan-out worker in the last 5 minutes (throttled, refused or unreachable): that group's tenants missed a minute's verification.", 5, 1, 0},
	{"KeyRotationAge", "KeyRotationAgeDays", "Maximum", "A tenant's active TMK version is older than 90 days: rotate it.", 60, 1, 90},
}

// NewAlarms creates the topic and the alarms.
func NewAlarms(scope constructs.Construct, id string, c Config) *Alarms {
	s := constructs.NewConstruct(scope, jsii.String(id))
	topic := awssns.NewTopic(s, jsii.String("Topic"), &awssns.TopicProps{TopicName: jsii.String(c.Prefix("alarms"))})
	if c.AlarmEmail != "" {
		topic.AddSubscription(awssnssubscriptions.NewEmailSubscription(jsii.String(c.AlarmEmail), nil))
	}
	action := awscloudwatchactions.NewSnsAction(topic)
	for _, a := range alarmSpecs {
		metric := awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
			Namespace:     jsii.String(MetricsNamespace),
			MetricName:    jsii.String(a.metric),
			DimensionsMap: &map[string]*string{"Stage": jsii.String(c.Name)},
			Statistic:     jsii.String(a.statistic),
			Period:        awscdk.Duration_Minutes(jsii.Number(a.period)),
		})
		alarm := awscloudwatch.NewAlarm(s, jsii.String(a.id), &awscloudwatch.AlarmProps{
			AlarmName:          jsii.String(c.Prefix(a.id)),
			AlarmDescription:   jsii.String(a.description),
			Metric:             metric,
			Threshold:          jsii.Number(a.threshold),
			EvaluationPeriods:  jsii.Number(a.periods),
			ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD,
			// No data means no sweep reported a problem.
			TreatMissingData: awscloudwatch.TreatMissingData_NOT_BREACHING,
		})
		alarm.AddAlarmAction(action)
		alarm.AddOkAction(action)
	}
	return &Alarms{Construct: s, Topic: topic}
}
