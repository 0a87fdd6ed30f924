using System.Text;

namespace Appliance.Server;

/// <summary>The "Server: ...\r\n" line sent on every response; empty when configured off.</summary>
public static class ServerHeader
{
    private static byte[] s_line = "Server: appliance\r\n"u8.ToArray();

    public static ReadOnlySpan<byte> Line => Volatile.Read(ref s_line);

    public static void Configure(string? value) =>
        Volatile.Write(ref s_line, value is null ? "Server: appliance\r\n"u8.ToArray()
            : value.Length == 0 ? [] : Encoding.ASCII.GetBytes($"Server: {value}\r\n"));
}
