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
    }

    public string Name { get; }

    public State Current => _state;

    public void Update(State state) => _state = state;

    /// <param name="Certificates">null for a plain listener.</param>
    public sealed record State(CertificateStore? Certificates, ServerLimits Limits, IRequestDispatcher Dispatcher, bool Http2Enabled);
}
