using System.Runtime.InteropServices;

namespace Appliance.Hosting;

/// <summary>
/// The signals the appliance acts on (SIGHUP reloads, SIGUSR1 reopens the access log) can arrive ignored from its
/// parent: nohup sets SIGHUP to SIG_IGN, and an ignored disposition survives exec. .NET then never delivers the signal
/// to a <see cref="PosixSignalRegistration"/>, so <c>kill -HUP</c> would do nothing. Like nginx, the appliance takes
/// these signals whatever it inherited: an ignored one is set back to its default action just before the handlers
/// are registered. A disposition that is not SIG_IGN is left as it is.
/// </summary>
internal static unsafe partial class SignalDisposition
{
    private const nint SigDfl = 0;
    private const nint SigIgn = 1;

    [LibraryImport("libc", EntryPoint = "sigaction", SetLastError = true)]
    private static partial int SigAction(int signal, void* action, void* previous);

    [LibraryImport("libc", EntryPoint = "signal")]
    private static partial nint Signal(int signal, nint handler);

    /// <summary>True when <paramref name="signal"/> was ignored and is now back at its default action.</summary>
    public static bool Unignore(int signal)
    {
        // struct sigaction is 152 bytes on x86-64 and arm64 glibc, its handler first; 256 leaves room.
        byte* current = stackalloc byte[256];
        if (SigAction(signal, null, current) != 0 || *(nint*)current != SigIgn)
        {
            return false;
        }

        Signal(signal, SigDfl);
        return true;
    }
}
