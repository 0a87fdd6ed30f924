using System.Net.Sockets;
using System.Text;

namespace Appliance.Hosting;

/// <summary>
/// sd_notify(3) without libsystemd: datagrams to $NOTIFY_SOCKET. Used whenever the variable is set, whatever
/// /proc/1/comm says (ProtectProc=invisible hides it, which fools Microsoft.Extensions.Hosting.Systemd's detection).
/// READY=1 once listeners are bound and the config is loaded, RELOADING=1/READY=1 around a reload, STOPPING=1 at the
/// start of the drain, STATUS= lines for `systemctl status`, WATCHDOG=1 from <see cref="Watchdog"/>.
/// </summary>
public sealed class SystemdNotifier : IDisposable
{
    private readonly Socket? _socket;
    private readonly UnixDomainSocketEndPoint? _endPoint;

    public SystemdNotifier(string? notifySocket)
    {
        if (string.IsNullOrEmpty(notifySocket) || (notifySocket[0] != '/' && notifySocket[0] != '@'))
        {
            return; // not under systemd (or a vsock address, which we do not speak)
        }

        // A leading '@' names an abstract socket, which .NET spells with a leading NUL.
        _endPoint = new UnixDomainSocketEndPoint(notifySocket[0] == '@' ? "\0" + notifySocket[1..] : notifySocket);
        _socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
    }

    /// <summary>The notifier for this process: NOTIFY_SOCKET read once, then removed so child processes do not inherit it.</summary>
    public static SystemdNotifier FromEnvironment()
    {
        string? path = Environment.GetEnvironmentVariable("NOTIFY_SOCKET");
        Environment.SetEnvironmentVariable("NOTIFY_SOCKET", null);
        return new SystemdNotifier(path);
    }

    public bool Enabled => _socket is not null;

    public void Ready(string status) => Send($"READY=1\nSTATUS={status}\nMAINPID={Environment.ProcessId}");

    public void Reloading() =>
        // MONOTONIC_USEC lets systemd 253+ (Type=notify-reload) match this to its reload request; older ones ignore it.
        Send($"RELOADING=1\nMONOTONIC_USEC={Environment.TickCount64 * 1000}");

    public void Stopping(string status) => Send($"STOPPING=1\nSTATUS={status}");

    public void Status(string status) => Send("STATUS=" + status);

    public void WatchdogPing() => Send("WATCHDOG=1");

    public void Send(string state)
    {
        if (_socket is null)
        {
            return;
        }

        try
        {
            _socket.SendTo(Encoding.UTF8.GetBytes(state), _endPoint!);
        }
        catch (SocketException)
        {
            // systemd gone or the socket refused: nothing useful to do; the service keeps serving.
        }
    }

    public void Dispose() => _socket?.Dispose();
}
