package stream

// The GitHub events ghas-relay handles: the one list the receiver
// publishes from (with ping), the processor dispatches on and the
// missed-delivery sweep recovers. Each is stored on
// ghas.<webhook|reconcile|redelivery>.<event>.
const (
	EventCodeScanningAlert        = "code_scanning_alert"
	EventDependabotAlert          = "dependabot_alert"
	EventSecretScanningAlert      = "secret_scanning_alert"
	EventRepository               = "repository"
	EventInstallation             = "installation"
	EventInstallationRepositories = "installation_repositories"
	EventCustomPropertyValues     = "custom_property_values"
	// EventPing is GitHub's check of a new webhook: the receiver stores it,
	// the processor ignores it and the sweep never recovers it.
	EventPing = "ping"
)

// HandledEvents are the events whose every action the processor acts on,
// including actions GitHub adds later; ping aside.
func HandledEvents() []string {
	return []string{
		EventCodeScanningAlert, EventDependabotAlert, EventSecretScanningAlert,
		EventRepository, EventInstallation, EventInstallationRepositories, EventCustomPropertyValues,
	}
}

// Handled reports whether event is one of HandledEvents.
func Handled(event string) bool {
	switch event {
	case EventCodeScanningAlert, EventDependabotAlert, EventSecretScanningAlert,
		EventRepository, EventInstallation, EventInstallationRepositories, EventCustomPropertyValues:
		return true
	}
	return false
}

// IsAlert reports whether event carries one alert (a finding).
func IsAlert(event string) bool {
	switch event {
	case EventCodeScanningAlert, EventDependabotAlert, EventSecretScanningAlert:
		return true
	}
	return false
}
