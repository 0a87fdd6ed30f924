namespace Appliance.Telemetry;

public enum AccessLogFormat
{
    /// <summary>One JSON object per line.</summary>
    Json,

    /// <summary>nginx's "combined": <c>$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"</c>.</summary>
    Combined,
}

/// <summary>server.accessLog compiled: immutable; a reload that changes any of it reopens the log.</summary>
/// <param name="Path">Absolute path of the live file.</param>
/// <param name="MaxSize">Rotate once the file passes this many bytes; 0 never (logrotate's job then).</param>
/// <param name="MaxFiles">Rotated files kept: <c>Path.1</c> … <c>Path.N</c> (or <c>Path.N.lz4</c>).</param>
/// <param name="Lz4">Rotated files are LZ4 frames (what the <c>lz4</c> CLI reads).</param>
public sealed record AccessLogOptions(string Path, AccessLogFormat Format, long MaxSize, int MaxFiles, bool Lz4)
{
    public const long DefaultMaxSize = 64L << 20;

    public const int DefaultMaxFiles = 10;
}
