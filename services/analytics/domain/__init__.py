"""Pure analytics: indicators (batch and streaming) and the confluence engine. No I/O."""
