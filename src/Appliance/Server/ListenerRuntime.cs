using Appliance.Tls;

namespace Appliance.Server;

/// <summary>
/// The parts of a listener that connections read at the moment they need them, so a config reload can
/// swap them (new certificates, limits, dispatcher) while the socket and its live connections stay.
/// </summary>
public sealed class ListenerRuntime
{
    private volatile State _state;

    public ListenerRuntime(string name, State state)
    {
        Name = name;
        _state = state;
        state.Certificates?.BeginService();
    }

    public string Name { get; }

    public State Current => _state;

    /// <summary>New connections read the new state; the old certificates leave service (open connections keep theirs).</summary>
    public void Update(State state)
    {
        // First, so a certificate in both keeps its pinned context (and sessions) throughout.
        state.Certificates?.BeginService(previous: _state.Certificates);
        State old = Interlocked.Exchange(ref _state, state);
        old.Certificates?.EndService();
    }

    /// <summary>The listener closed.</summary>
    public void Close() => _state.Certificates?.EndService();

    /// <param name="Certificates">null for a plain listener.</param>
    /// <param name="AcmeChallenges">TLS listeners: pending TLS-ALPN-01 challenges, answered before the usual handshake.</param>
    /// <param name="AccessLog">Where completed requests are recorded; null for none (the admin socket).</param>
    public sealed record State(CertificateStore? Certificates, ServerLimits Limits, IRequestDispatcher Dispatcher, bool Http2Enabled,
        Tls.Acme.PendingChallenges? AcmeChallenges = null, Telemetry.AccessLog? AccessLog = null);
}
