using Appliance.Protocol.Http2;

namespace Appliance.Protocol.Tests.Http2;

public class Http2SettingsTests
{
    [Fact]
    public void New_settings_hold_the_RFC_defaults()
    {
        var settings = new Http2Settings();

        Assert.Equal(4096u, settings.HeaderTableSize);
        Assert.True(settings.EnablePush);
        Assert.Equal(Http2Settings.Unlimited, settings.MaxConcurrentStreams);
        Assert.Equal(65_535, settings.InitialWindowSize);
        Assert.Equal(16_384, settings.MaxFrameSize);
        Assert.Equal(Http2Settings.Unlimited, settings.MaxHeaderListSize);
    }

    [Fact]
    public void Apply_sets_each_known_setting()
    {
        var settings = new Http2Settings();

        Assert.False(settings.Apply(Http2SettingId.HeaderTableSize, 0).IsError);
        Assert.False(settings.Apply(Http2SettingId.EnablePush, 0).IsError);
        Assert.False(settings.Apply(Http2SettingId.MaxConcurrentStreams, 100).IsError);
        Assert.False(settings.Apply(Http2SettingId.InitialWindowSize, 1 << 20).IsError);
        Assert.False(settings.Apply(Http2SettingId.MaxFrameSize, 1 << 20).IsError);
        Assert.False(settings.Apply(Http2SettingId.MaxHeaderListSize, 8192).IsError);

        Assert.Equal(0u, settings.HeaderTableSize);
        Assert.False(settings.EnablePush);
        Assert.Equal(100u, settings.MaxConcurrentStreams);
        Assert.Equal(1 << 20, settings.InitialWindowSize);
        Assert.Equal(1 << 20, settings.MaxFrameSize);
        Assert.Equal(8192u, settings.MaxHeaderListSize);
    }

    [Theory]
    [InlineData((ushort)0, 5u)]
    [InlineData((ushort)7, 5u)]
    [InlineData((ushort)8, 1u)]
    [InlineData(ushort.MaxValue, uint.MaxValue)]
    public void Apply_ignores_unknown_ids(ushort id, uint value)
    {
        var settings = new Http2Settings();

        Assert.False(settings.Apply((Http2SettingId)id, value).IsError);
        Assert.Equal(0, settings.CopyNonDefaultTo(new Http2Setting[6]));
    }

    [Theory]
    [InlineData(Http2SettingId.EnablePush, 2u, Http2ErrorCode.ProtocolError)]
    [InlineData(Http2SettingId.InitialWindowSize, 0x8000_0000u, Http2ErrorCode.FlowControlError)]
    [InlineData(Http2SettingId.MaxFrameSize, 16_383u, Http2ErrorCode.ProtocolError)]
    [InlineData(Http2SettingId.MaxFrameSize, 16_777_216u, Http2ErrorCode.ProtocolError)]
    public void Apply_refuses_invalid_values_as_connection_errors_and_keeps_the_old_value(Http2SettingId id, uint value, Http2ErrorCode code)
    {
        var settings = new Http2Settings();

        Http2FrameError error = settings.Apply(id, value);

        Assert.True(error.IsConnectionError);
        Assert.Equal(code, error.ErrorCode);
        Assert.Equal(0, settings.CopyNonDefaultTo(new Http2Setting[6]));
    }

    [Fact]
    public void Reset_restores_the_defaults()
    {
        var settings = new Http2Settings { MaxConcurrentStreams = 1, InitialWindowSize = 1, MaxFrameSize = 20_000, EnablePush = false };

        settings.Reset();

        Assert.Equal(0, settings.CopyNonDefaultTo(new Http2Setting[6]));
    }

    [Fact]
    public void Non_default_settings_are_listed_for_the_settings_frame()
    {
        var settings = new Http2Settings { EnablePush = false, MaxConcurrentStreams = 100, InitialWindowSize = 1 << 20, MaxHeaderListSize = 32_768 };
        var pairs = new Http2Setting[6];

        int count = settings.CopyNonDefaultTo(pairs);

        Assert.Equal(
            [(Http2SettingId.EnablePush, 0u), (Http2SettingId.MaxConcurrentStreams, 100u), (Http2SettingId.InitialWindowSize, 1u << 20), (Http2SettingId.MaxHeaderListSize, 32_768u)],
            pairs.Take(count).Select(p => (p.Id, p.Value)));
    }
}
