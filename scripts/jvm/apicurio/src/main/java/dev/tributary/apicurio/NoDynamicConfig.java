package dev.tributary.apicurio;

import io.apicurio.common.apps.config.DynamicConfigPropertyList;
import java.util.List;
import javax.enterprise.context.ApplicationScoped;
import javax.enterprise.inject.Produces;

/**
 * The bean Apicurio's config-index extension would generate at build time: the
 * settings an administrator may change while the registry runs. That
 * extension's build half is not on Maven Central, so the registry runs with
 * none (everything is set at start, as the tests do).
 */
public class NoDynamicConfig {
    @Produces
    @ApplicationScoped
    DynamicConfigPropertyList dynamicConfigProperties() {
        return new DynamicConfigPropertyList(List.of());
    }
}
