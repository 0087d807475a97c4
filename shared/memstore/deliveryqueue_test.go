package memstore_test

import (
	"testing"

	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/memstore"
	"github.com/keyseal/keyseal/shared/storetest"
)

func TestDeliveryQueueConformance(t *testing.T) {
	storetest.RunDeliveryQueue(t, func(*testing.T) keyseal.DeliveryQueue { return memstore.NewDeliveryQueue() })
}
